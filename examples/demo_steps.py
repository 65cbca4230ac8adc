"""Steps of `make demo` beyond training: feature store (PIT vs naive join), pipeline, serving, skew + lineage."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    from roost.features.materialize import materialize
    from roost.training.api import train

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
        res = train(
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
        from roost.training.metrics import binary_metrics

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
    done = materialize(end=imps["event_time"].max())
    console.print(f"materialized the online store: {len(done)} view(s)")


def pipeline(ws: Path) -> None:
    """Run the demo pipeline: materialise → train → evaluate → gate → promote engagement@prod."""
    import pandas as pd

    from roost.pipeline.loader import load_pipeline
    from roost.pipeline.runner import TaskState, run_pipeline

    for f in ("pipeline.yaml", "train.yaml"):
        shutil.copy(ROOT / "examples" / "engagement" / f, ws / f)
    df = pd.read_parquet(ws / "data" / "train.parquet")
    df[df["event_time"] >= df["event_time"].quantile(0.8)].to_parquet(ws / "data" / "holdout.parquet")

    def event(ev: str, st: TaskState) -> None:
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
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(ws: Path, model: str, *options: str) -> Iterator[str]:
    """Run `roost serve MODEL OPTIONS` in the workspace until ready; yield its URL; SIGTERM it (flushes its logs)."""
    import httpx

    port = _free_port()
    log = open(ws / "serve.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "serve", model, "--port", str(port), *options],
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
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def serve(ws: Path) -> None:
    """Start `roost serve engagement@prod`, send a KServe V2 and a TF-Serving request, stop it."""
    import httpx
    import pandas as pd

    from roost.demo import send_traffic

    with _server(ws, "engagement@prod", "--log-requests", "1") as url:  # the fleet registers itself (model page)
        meta = httpx.get(f"{url}/v2/models/engagement").json()
        holdout = pd.read_parquet(ws / "data" / "holdout.parquet")[[i["name"] for i in meta["inputs"]]]
        console.print(f"traffic for the model page: {send_traffic(url, 'engagement', holdout)}")
        rows = pd.read_parquet(ws / "data" / "holdout.parquet").head(3)
        body = {"instances": json.loads(rows[[i["name"] for i in meta["inputs"]]].to_json(orient="records"))}
        r = httpx.post(f"{url}/v1/models/engagement:predict", json=body, timeout=10)
        console.print(f"POST {url}/v1/models/engagement:predict → {r.status_code} {r.text[:200]}")
        m = httpx.get(f"{url}/metrics").text
        lines = [ln for ln in m.splitlines() if ln.startswith("roost_requests_total")]
        console.print("prometheus: " + ", ".join(lines[:2]))


def train_live(ws: Path) -> Any:
    """Apply the live views (no TTL), train engagement-live from the feature store by entity id, materialise."""
    import pandas as pd

    import roost.features as rf
    from roost.features.materialize import materialize
    from roost.training.api import train

    (ws / "features").mkdir(exist_ok=True)
    shutil.copy(ROOT / "examples" / "engagement" / "live" / "live.py", ws / "features" / "live.py")
    shutil.copy(ROOT / "examples" / "engagement" / "train_live.yaml", ws / "train_live.yaml")
    rf.apply()
    imps = pd.read_parquet(ws / "data" / "impressions.parquet")
    imps[["user_id", "item_id", "event_time", "clicked"]].to_parquet(ws / "data" / "live_entities.parquet")
    res = train(ws / "train_live.yaml", progress=False)
    materialize(views=["user_live", "item_live"])
    return res


def skew_lineage(ws: Path, requests: int = 200, batches: int = 4, stale_share: float = 0.3) -> dict[str, Any]:
    """Serve a feature-store model by entity id with request logging, let the online store go stale for one view,
    catch it with roost.monitor.skew (reports/skew.html) and trace one served request with roost lineage."""
    import httpx
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roost.lineage import default_log_dir, lineage, render_text
    from roost.monitor.skew import skew
    from roost.monitor.skew_report import skew_html

    res = train_live(ws)
    data = ws / "data"
    imps = pd.read_parquet(data / "impressions.parquet")
    console.print(
        f"trained {res.model_type} from the feature store (data.entities): run {res.run_id[:8]} · "
        f"engagement-live/{res.version}; materialised user_live, item_live"
    )

    # materialisation stops; new user snapshots still land in the offline source: the online store goes stale
    rng = np.random.default_rng(0)
    sample = imps.iloc[rng.choice(len(imps), size=requests, replace=False)]
    served_users = sample["user_id"].unique()
    planted = rng.choice(served_users, size=max(1, int(len(served_users) * stale_share)), replace=False)
    src = pq.read_table(data / "users.parquet")
    users = src.to_pandas()
    newer = users[users["user_id"].isin(planted)].sort_values("event_time").groupby("user_id").tail(1).copy()
    newer["event_time"] += pd.Timedelta(hours=12)
    newer["created_time"] = newer["event_time"] + pd.Timedelta(minutes=5)
    newer["clicks_7d"] += 3
    newer["sessions_7d"] += 1
    added = pa.Table.from_pandas(newer, schema=src.schema, preserve_index=False)
    pq.write_table(pa.concat_tables([src, added]), data / "users.parquet")
    console.print(
        f"planted skew: {len(newer)} newer user snapshots appended to data/users.parquet, NOT materialised "
        f"(user_live goes stale online; item_live untouched)"
    )

    request_ids = []
    with _server(ws, f"engagement-live/{res.version}", "--log-requests", "1") as url:
        for part in np.array_split(np.arange(requests), batches):
            rows = sample.iloc[part]
            body = {"inputs": {"user_id": rows["user_id"].tolist(), "item_id": rows["item_id"].tolist()}}
            r = httpx.post(f"{url}/v1/models/engagement-live:predict", json=body, timeout=30)
            if r.status_code != 200:
                raise SystemExit(f"entity-id request failed: {r.status_code} {r.text[:300]}")
            request_ids.append(r.headers["x-request-id"])
            time.sleep(0.2)
    console.print(
        f"served {requests} rows by entity id in {batches} requests (--log-requests 1); request ids "
        f"{', '.join(request_ids)}"
    )

    log_dir = default_log_dir() or ws / ".roost" / "request_logs"
    rep = skew(log_dir, model="engagement-live", max_mismatch=0.01)
    t = Table(title=f"roost monitor skew: {rep.rows_compared:,} request rows vs point-in-time recomputation")
    t.add_column("view:field", no_wrap=True)
    for c in ("compared", "mismatch", "stale_online", "other"):
        t.add_column(c, justify="right", no_wrap=True)
    for f in rep.features:
        other = f.mismatches - f.count("stale_online")
        t.add_row(f.ref, str(f.compared), f"{f.mismatch_rate:.1%}", str(f.count("stale_online")), str(other))
    console.print(t)
    console.print(f"verdict: {rep.verdict}")
    (ws / "reports").mkdir(exist_ok=True)
    (ws / "reports" / "skew.html").write_text(skew_html(rep))
    console.print(f"report: {ws / 'reports' / 'skew.html'}")

    console.rule(f"roost lineage {request_ids[0]}")
    lin = lineage(request_ids[0], log_dir=log_dir)
    for line in render_text(lin):
        console.print(line, highlight=False, markup=False)
    return {
        "report": rep,
        "request_ids": request_ids,
        "run_id": res.run_id,
        "model": f"engagement-live/{res.version}",
        "planted_users": {int(u) for u in planted},
        "sample": sample,
        "lineage": lin,
    }


def fresh_clicks(ws: Path, model: str, user_id: int, item_id: int, burst: int = 60) -> tuple[float, float]:
    """Serve `model` by entity id; predict one (user, item); push a burst of live clicks for the user with
    `roost.features.push` (online store and offline log at once) while it is served; predict again."""
    from datetime import UTC, datetime, timedelta

    import httpx

    import roost.features as rf

    name = model.split("/")[0].split("@")[0]
    refs = ["user_live:clicks_7d", "user_live:sessions_7d", "user_live:avg_session_min"]
    with _server(ws, model) as url:

        def predict() -> float:
            body = {"inputs": {"user_id": [user_id], "item_id": [item_id]}}
            r = httpx.post(f"{url}/v1/models/{name}:predict", json=body, timeout=30)
            if r.status_code != 200:
                raise SystemExit(f"entity-id request failed: {r.status_code} {r.text[:300]}")
            out = r.json()["outputs"]
            v = (out["probability"] if isinstance(out, dict) else out)[0]  # P(click) of the one row
            return float(v[-1] if isinstance(v, list) else v)

        now = rf.online(refs, {"user_id": [user_id]}).iloc[0]
        before = predict()
        t = datetime.now(UTC)
        clicks = [
            {
                "user_id": user_id,
                "event_time": t + timedelta(milliseconds=i),
                "clicks_7d": int(now["clicks_7d"]) + i + 1,
                "sessions_7d": int(now["sessions_7d"]) + 1 + i // 10,
                "avg_session_min": float(now["avg_session_min"]),
            }
            for i in range(burst)
        ]
        t0 = time.perf_counter()
        for i in range(0, burst, 10):  # the burst arrives as it happens: ten clicks per push
            rf.push("user_live", clicks[i : i + 10])
        pushed_ms = (time.perf_counter() - t0) * 1e3
        after = predict()
    console.print(f"user {user_id} × item {item_id}: clicks_7d {int(now['clicks_7d'])}, served P(click) = {before:.4f}")
    console.print(
        f"pushed a burst of {burst} live clicks in {pushed_ms:.0f} ms (clicks_7d → {clicks[-1]['clicks_7d']}), "
        f"served P(click) = {after:.4f}"
    )
    return before, after
