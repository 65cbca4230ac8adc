"""`make demo`: roost's whole loop on generated data, in a fresh workspace, ending with where to look.

Each step uses the public Python API (the CLI verbs of the same names do the same).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
WS = Path(os.environ.get("ROOST_DEMO_DIR", ROOT / "demo-workspace"))
ROWS = int(os.environ.get("ROOST_DEMO_ROWS", "60000"))
console = Console()


def step(title: str) -> None:
    """Print a step header."""
    console.rule(f"[bold cyan]{title}")


def metrics_table(title: str, metrics: dict[str, float]) -> None:
    """Print metrics as a table."""
    t = Table(title=title)
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in sorted(metrics.items()):
        t.add_row(k, f"{v:.4f}")
    console.print(t)


def main() -> int:
    import roost
    from roost import workspace

    t0 = time.time()
    for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        os.environ.pop(var, None)
    step("1. workspace")
    if WS.exists():
        shutil.rmtree(WS)
    ws = roost.init(WS)
    os.chdir(WS)
    workspace.use(ws)
    console.print(f"workspace {ws.root}  (store {ws.store_url})")

    step(f"2. data: engagement log, {ROWS:,} impressions with time-varying user/item features")
    from roost.datasets.engagement import make_engagement

    files = make_engagement(ROWS, WS / "data", seed=0)
    for name, path in files.items():
        console.print(f"  {name:12s} {path.relative_to(WS)}")

    sys.path.insert(0, str(ROOT / "examples"))
    import demo_steps

    step("3. feature store: point-in-time training set vs a naive latest-value join")
    demo_steps.feature_store_leak(WS)

    step("4. train with prescribed defaults, register engagement, alias staging")
    from roost.training.api import train

    res = train(
        {
            "data": "data/train.parquet",
            "label": "clicked",
            "experiment": "engagement",
            "split": {"method": "time", "column": "event_time"},
            "register": "engagement",
        },
        progress=sys.stderr.isatty(),
    )
    roost.set_alias("engagement", res.version, "staging")
    metrics_table(
        f"{res.model_type} · run {res.run_id[:8]} · engagement/{res.version} (@staging)",
        {k: v for k, v in res.metrics.items() if k.startswith("test_")},
    )
    model = roost.load_model("engagement@staging")
    import pandas as pd

    sample = pd.read_parquet(WS / "data" / "train.parquet").tail(5)
    console.print(f"roost.load_model('engagement@staging').predict(5 rows) -> {model.predict(sample).round(4)}")

    step("5. pipeline: materialise → train → evaluate → gate → promote engagement@prod")
    demo_steps.pipeline(WS)

    step("6. serve engagement@prod (KServe V2 + TF-Serving REST), one request, metrics")
    demo_steps.serve(WS)

    step("7. training/serving skew: a feature-store model served by entity id, one view left stale; lineage")
    skewed = demo_steps.skew_lineage(WS)

    step("8. real-time features: a burst of live clicks pushed while the model is served changes its prediction")
    first = skewed["sample"].iloc[0]
    demo_steps.fresh_clicks(WS, skewed["model"], int(first["user_id"]), int(first["item_id"]))

    step("9. monitoring + responsible ML: drift of a later slice, fairness by gender")
    import pandas as pd

    from roost.demo import engagement_demo

    engagement_demo(
        model="engagement@prod",
        out_dir=WS / "reports",
        console=console,
        data=pd.read_parquet(WS / "data" / "train.parquet"),
        monitor="engagement-live",  # its drift and skew checks scheduled and run once: charted in `roost ui`
    )
    console.print(f"reports: {WS / 'reports'}")

    step("where to look")
    console.print(f"  cd {WS}")
    console.print("  roost runs list --order-by 'metrics.test_roc_auc DESC'")
    console.print(f"  roost runs show {res.run_id[:8]}")
    console.print("  roost models show engagement@prod             # promoted by the pipeline")
    console.print(
        "  roost pipeline show $(roost runs list -f \"tags.roost.kind = 'pipeline'\" --json | "
        "python -c 'import json,sys; print(json.load(sys.stdin)[0][\"run_id\"])')"
    )
    console.print(f"  roost tensorboard {res.run_id[:8]}        # TensorBoard on the run")
    console.print("  roost ui                                  # the repository in a browser")
    console.print("  roost serve engagement@prod --port 8080    # KServe V2 + TF-Serving REST")
    console.print(f"  open {WS / 'reports' / 'drift.html'} and fairness.html")
    console.print(f"  open {WS / 'reports' / 'skew.html'}   # served vs point-in-time features, stale user_live rows")
    console.print("  roost monitor skew .roost/request_logs --model engagement-live --html reports/skew.html")
    console.print(f"  roost lineage {skewed['request_ids'][0]}   # a served request back to its run, data, views")
    console.print(f"[green]demo finished in {time.time() - t0:.0f} s[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
