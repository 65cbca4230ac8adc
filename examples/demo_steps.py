"""Steps of `make demo` beyond training: feature store (PIT vs naive join), pipeline, serving."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()
ROOT = Path(__file__).resolve().parents[1]
NON_FEATURES = ["impression_id", "user_id", "item_id", "event_time", "label_time"]


def feature_store_leak(ws: Path) -> None:
    """Train on a naive latest-value join and on roost's point-in-time training set; compare offline vs later."""
    import pandas as pd

    import roost
    import roost.features as rf
    from roost.datasets.joins import latest_join

    shutil.copytree(ROOT / "examples" / "engagement" / "features", ws / "features", dirs_exist_ok=True)
    diff = rf.apply()
    added = "; ".join(f"{kind}s {', '.join(names)}" for kind, names in diff.added.items() if names)
    console.print(f"roost features apply: registered {added}")
    data = ws / "data"
    imps = pd.read_parquet(data / "impressions.parquet")
    users, items = pd.read_parquet(data / "users.parquet"), pd.read_parquet(data / "items.parquet")
    cut = imps["event_time"].quantile(0.75)
    before, later = imps[imps["event_time"] < cut], imps[imps["event_time"] >= cut]
    refs = ["user_stats:*", "item_stats:*"]
    pit = rf.training_set(before.reset_index(drop=True), features=refs)
    later_pit = rf.training_set(later.reset_index(drop=True), features=refs)
    naive = latest_join(before, users, items, as_of=cut)
    naive = naive[[c for c in pit.columns if c in naive.columns]]
    for name, df in (("pit", pit), ("naive", naive), ("later", later_pit)):
        df.to_parquet(data / f"fs_{name}.parquet")
    rows = []
    for name in ("naive", "pit"):
        res = roost.train(
            {
                "data": f"data/fs_{name}.parquet",
                "label": "clicked",
                "model": "lightgbm",
                "experiment": "feature-store",
                "name": f"{name}-join",
                "features": {"exclude": NON_FEATURES},
            },
            progress=False,
        )
        model = roost.load_model(str(res.package_path))
        from roost.train.metrics import binary_metrics

        later_auc = binary_metrics(later_pit["clicked"].to_numpy(), model.predict(later_pit))["roc_auc"]
        rows.append((name, res.metrics["test_roc_auc"], later_auc))
    t = Table(title="same model, two joins: offline (random split) vs the later time slice (ROC-AUC)")
    for c in ("training join", "offline", "later slice"):
        t.add_column(c, justify="right")
    for name, off, lat in rows:
        label = "naive latest-value join" if name == "naive" else "roost.features.training_set (PIT)"
        t.add_row(label, f"{off:.4f}", f"{lat:.4f}")
    console.print(t)
    (n_off, n_lat), (p_off, p_lat) = [(r[1], r[2]) for r in rows]
    verdict = "as expected" if n_off > p_off and p_lat > n_lat else "NOT as expected on this sample"
    console.print(
        f"the naive join looks better offline ({n_off:.3f} > {p_off:.3f}) and is worse later "
        f"({n_lat:.3f} < {p_lat:.3f}): {verdict}"
    )
    res = rf.materialize(end=imps["event_time"].max())
    console.print(f"materialized the online store: {len(res)} view(s)")


def pipeline(ws: Path) -> None:
    """Run the demo pipeline: materialise → train → evaluate → gate → promote engagement@prod."""
    import pandas as pd

    from roost.pipeline.loader import load_pipeline
    from roost.pipeline.runner import run_pipeline

    for f in ("pipeline.yaml", "train.yaml"):
        shutil.copy(ROOT / "examples" / "engagement" / f, ws / f)
    df = pd.read_parquet(ws / "data" / "train.parquet")
    df[df["event_time"] >= df["event_time"].quantile(0.8)].to_parquet(ws / "data" / "holdout.parquet")

    def event(ev: str, st) -> None:
        if ev != "start":
            console.print(f"  {ev:9s} {st.name} {st.seconds:.1f}s {st.error or ''}")

    res = run_pipeline(load_pipeline(ws / "pipeline.yaml"), on_event=event)
    gate, promo = res.output("gate"), res.output("promote")
    console.print(
        f"gate: challenger roc_auc {gate['challenger']:.4f} vs champion {gate['champion']} → "
        f"{'promote' if gate['promote'] else 'keep'}; {promo}"
    )
    if res.status != "FINISHED":
        raise SystemExit("demo pipeline failed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(ws: Path) -> None:
    """Start `roost serve engagement@prod`, send a KServe V2 and a TF-Serving request, stop it."""
    import httpx
    import pandas as pd

    port = _free_port()
    log = open(ws / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "serve", "engagement@prod", "--port", str(port)],
        cwd=ws,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise SystemExit(f"roost serve did not start; see {ws / 'serve.log'}")
            time.sleep(0.3)
        meta = httpx.get(f"{url}/v2/models/engagement").json()
        rows = pd.read_parquet(ws / "data" / "holdout.parquet").head(3)
        body = {"instances": json.loads(rows[[i["name"] for i in meta["inputs"]]].to_json(orient="records"))}
        r = httpx.post(f"{url}/v1/models/engagement:predict", json=body, timeout=10)
        console.print(f"POST {url}/v1/models/engagement:predict → {r.status_code} {r.text[:200]}")
        m = httpx.get(f"{url}/metrics").text
        lines = [ln for ln in m.splitlines() if ln.startswith("roost_requests_total")]
        console.print("prometheus: " + ", ".join(lines[:2]))
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
