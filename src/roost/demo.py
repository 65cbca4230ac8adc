"""The engagement demo's monitoring step: a later slice of the log checked for drift, and a fairness table.

It spans training (a fallback model), monitoring (drift) and responsible ML (fairness), so it sits above all
three, as the CLI does; no roost package imports it.

`make demo` calls `engagement_demo(model="engagement@staging", out_dir=...)`; it prints (Rich) and returns the
reports. Without a model it fits a small LightGBM on the early days so it also runs on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SENSITIVE = "gender"
REFERENCE_DAYS = 7  # training period: the first week
LATER_FROM_DAY = 11  # the later slice: the last three days


def _slices(df: Any) -> tuple[Any, Any]:
    """(first week, last three days) of an engagement table."""
    import pandas as pd

    t0 = df["event_time"].min().floor("D")
    ref = df[df["event_time"] < t0 + pd.Timedelta(days=REFERENCE_DAYS)].reset_index(drop=True)
    cur = df[df["event_time"] >= t0 + pd.Timedelta(days=LATER_FROM_DAY)].reset_index(drop=True)
    return ref, cur


def _scorer(model: str | None, ref: Any) -> tuple[Any, list[str], str]:
    """(predict function, feature names, description) from a model reference, or a LightGBM fitted on `ref`."""
    if model is not None:
        from roost.modelpkg import load_model

        pred = load_model(model)
        return pred.predict, list(pred.inputs), model
    from roost.training.models import make_model

    feats = [
        c
        for c in ref.columns
        if c not in ("clicked", "impression_id", "user_id", "item_id", "event_time", "label_time")
    ]
    m = make_model("lightgbm", "binary", n_estimators=60).fit(ref[feats], ref["clicked"])
    return m.predict, feats, "LightGBM fitted on the first week"


def engagement_demo(
    rows: int = 60_000,
    seed: int = 0,
    model: str | None = None,
    out_dir: str | Path | None = None,
    data: Any = None,
    console: Any = None,
    monitor: str | None = None,
) -> dict[str, Any]:
    """Print drift of the later slice vs the first week and a fairness table for `gender`; return both reports.

    `monitor`: a served model whose drift and skew checks are then scheduled and run once (recorded monitor runs).
    """
    from rich.console import Console
    from rich.table import Table

    from roost.monitor.drift_compute import compare
    from roost.monitor.html_report import drift_html, fairness_html, write
    from roost.pipeline.monitor_schedule import demo_schedule
    from roost.responsible.group_fairness import group_metrics

    con = console or Console()
    if data is None:
        from roost.datasets.engagement import make_engagement_flat

        data = make_engagement_flat(rows, seed)
    ref, cur = _slices(data)
    predict, feats, scorer = _scorer(model, ref)
    ref_s, cur_s = ref.assign(pred_probability=predict(ref)), cur.assign(pred_probability=predict(cur))
    rep = compare(
        ref_s,
        cur_s,
        features=feats + ["pred_probability"],
        reference_name=f"days 1-{REFERENCE_DAYS} ({len(ref):,} impressions)",
        current_name=f"days {LATER_FROM_DAY + 1}+ ({len(cur):,} impressions)",
    )
    t = Table(title=f"drift: {rep.current} vs {rep.reference}")
    for c in ("feature", "method", "score", "threshold", "verdict"):
        t.add_column(c, justify="left" if c in ("feature", "method") else "right")
    for f in sorted(rep.features, key=lambda f: (not f.drifted, f.feature)):
        t.add_row(
            f.feature,
            f.method or f.status,
            "—" if f.score is None else f"{f.score:.4g}",
            "—" if f.threshold is None else f"{f.threshold:g}",
            "[bold red]DRIFT[/]" if f.drifted else "[green]ok[/]",
        )
    con.print(t)
    flagged = [f.feature for f in rep.features if f.drifted]
    con.print(
        f"[bold {'red' if flagged else 'green'}]later slice: {len(flagged)} of {len(rep.features)} "
        f"monitored columns drifted[/] ({', '.join(flagged) or 'none'}); drifted share {rep.share:.0%} "
        f"(dataset-level alert at {rep.drift_share:.0%}: {'DRIFT' if rep.dataset_drift else 'not reached'})"
    )
    thr = float(np.quantile(ref_s["pred_probability"], 0.9))
    fair = group_metrics(cur_s[[SENSITIVE]], y_true=cur_s["clicked"], y_score=cur_s["pred_probability"], threshold=thr)
    fair.source = f"{scorer}, later slice"
    tab = fair.table(SENSITIVE)
    ft = Table(title=f"fairness by {SENSITIVE} (top 10% of first-week scores selected: score ≥ {thr:.3f})")
    keys = ["count", "selection_rate", "tpr", "fpr", "precision", "roc_auc"]
    ft.add_column(SENSITIVE)
    for k in keys:
        ft.add_column(k.replace("_", " "), justify="right")
    for i, g in enumerate(tab.groups):
        ft.add_row(g[0], *[f"{tab.metrics[k][i]:,.0f}" if k == "count" else f"{tab.metrics[k][i]:.3f}" for k in keys])
    con.print(ft)
    con.print("  " + ", ".join(f"{k.replace('_', ' ')} [bold]{v:.3f}[/]" for k, v in tab.disparities().items()))
    for w in fair.warnings:
        con.print(f"  [yellow]warning:[/] {w}")
    out: dict[str, Any] = {"drift": rep, "fairness": fair}
    out["monitor"] = demo_schedule(monitor, console=con) if monitor else None
    if out_dir is not None:
        d = Path(out_dir)
        out["drift_html"] = write(drift_html(rep), d / "drift.html")
        out["fairness_html"] = write(fairness_html(fair), d / "fairness.html")
        con.print(f"  reports: {out['drift_html']}  {out['fairness_html']}")
    return out


def send_traffic(url: str, model: str, rows: Any, requests: int = 60, bad: int = 2, seed: int = 0) -> dict[str, int]:
    """Send `requests` TF-Serving predictions of 1-8 rows of the frame `rows` and `bad` malformed ones to a running
    `roost serve` (which registers its fleet and rolls its request logs up for the model page); returns the counts
    answered (the model page's traffic table shows the same numbers once the fleet's next heartbeat has run)."""
    import json

    import httpx

    rng = np.random.default_rng(seed)
    sent = {"requests": 0, "rows": 0, "errors": 0}
    with httpx.Client(base_url=url, timeout=30) as c:
        for _ in range(requests):
            n = int(rng.integers(1, 9))
            part = rows.sample(n, random_state=int(rng.integers(1 << 31)))
            body = {"instances": json.loads(part.to_json(orient="records"))}
            if c.post(f"/v1/models/{model}:predict", json=body).status_code == 200:
                sent["requests"] += 1
                sent["rows"] += n
        for _ in range(bad):
            got = c.post(f"/v1/models/{model}:predict", json={"instances": [{"no_such_input": 1.0}]})
            sent["errors"] += got.status_code >= 400
    return sent
