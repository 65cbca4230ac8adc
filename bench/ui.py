"""Runs-table benchmark: `roost ui` vs `mlflow ui` (3.17.2) serving the same 10,000 runs from SQLite.

Both servers run as subprocesses on loopback, one worker each; this process times HTTP round trips (median of
--repeats after a warm-up) for three queries a user makes on a runs table of 100 rows:
  (1) first page, newest first
  (2) filter `params.model = 'mlp' and metrics.auc > 0.7`, sorted by metrics.auc DESC
  (3) a deep page: rows 5,001-5,100, newest first (MLflow: its offset page token)
roost returns the whole rendered HTML page (plus the total count); MLflow returns its search API's JSON (what its
React UI fetches, then renders in the browser). roost's own server time comes from its Server-Timing header.
Data: runs with 4 params, 2 metrics, 1 tag; written in bulk through each tool's own SQLAlchemy schema (setup,
not timed). Prints every figure, then last `ratio: X` = MLflow / roost for (1), HTTP round trip.

    .venv/bin/python bench/ui.py [--runs 10000] [--repeats 15]
    .venv/bin/python bench/ui.py --scale [--runs 1000000] [--requests 10000000] [--fresh]
        # bench/ui_scale.py: big-store pages; the filled workspace is cached in .bench-cache/ui-scale/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_s, machine, mlflow_python, row, run_driver
from _servers import free_port

REPO = Path(__file__).resolve().parents[1]
FILTER = "params.model = 'mlp' and metrics.auc > 0.7"
PER_PAGE = 100
DEEP_OFFSET = 5000

MLFLOW_LOADER = r"""
import json, sys, time
spec = json.load(open(sys.argv[1]))
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
store = SqlAlchemyStore(spec["uri"], spec["artifacts"])
eid = store.create_experiment("bench")
runs, params, metrics, tags = [], [], [], []
for r in spec["runs"]:
    runs.append(dict(run_uuid=r["id"], name=r["name"], source_type="LOCAL", source_name="bench", entry_point_name="",
                     user_id="bench", status="FINISHED", start_time=r["start_ms"], end_time=r["start_ms"] + 1000,
                     source_version="", lifecycle_stage="active", artifact_uri=spec["artifacts"] + "/" + r["id"],
                     experiment_id=int(eid)))
    params += [dict(key=k, value=str(v), run_uuid=r["id"]) for k, v in r["params"].items()]
    metrics += [dict(key=k, value=v, timestamp=r["start_ms"], step=0, is_nan=False, run_uuid=r["id"])
                for k, v in r["metrics"].items()]
    tags += [dict(key=k, value=v, run_uuid=r["id"]) for k, v in r["tags"].items()]
    tags.append(dict(key="mlflow.runName", value=r["name"], run_uuid=r["id"]))
with store.ManagedSessionMaker() as s:
    for model, rows in ((SqlRun, runs), (SqlParam, params), (SqlMetric, metrics), (SqlLatestMetric, metrics),
                        (SqlTag, tags)):
        s.execute(model.__table__.insert(), rows)
n = len(store.search_runs([eid], FILTER, 1, 50000))
print(json.dumps({"experiment_id": eid, "matches": n}))
""".replace("FILTER", repr(FILTER))


def make_data(n: int, seed: int = 11) -> list[dict]:
    """The same synthetic runs for both tools."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        start = t0 + timedelta(seconds=37 * i)
        out.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                "name": f"run-{i:05d}",
                "start_ms": int(start.timestamp() * 1000),
                "params": {
                    "lr": rng.choice([0.001, 0.01, 0.1]),
                    "layers": rng.randint(1, 6),
                    "model": rng.choice(["mlp", "lgbm", "linear"]),
                    "optimizer": rng.choice(["adam", "sgd"]),
                },
                "metrics": {"auc": round(rng.uniform(0.5, 0.95), 5), "loss": round(rng.uniform(0.1, 1.0), 5)},
                "tags": {"team": rng.choice(["ads", "search", "growth"])},
            }
        )
    return out


def load_roost(root: Path, data: list[dict]) -> None:
    """Create a roost workspace holding `data` (bulk insert through roost's schema)."""
    from roost.registry.store import open_store, typed_param
    from roost.registry.tables import LatestMetric, Metric, Param, Run, Tag

    ws = roost.init(root)
    st = open_store(ws.store_url)
    eid = st.get_or_create_experiment("bench")
    runs, params, metrics, tags = [], [], [], []
    for r in data:
        start = datetime.fromtimestamp(r["start_ms"] / 1000, tz=UTC)
        runs.append(
            {
                "id": r["id"],
                "experiment_id": eid,
                "name": r["name"],
                "status": "FINISHED",
                "start_time": start,
                "end_time": start + timedelta(seconds=1),
                "user": "bench",
                "source": "bench",
                "artifact_uri": f"file://{ws.artifacts}/{eid}/{r['id']}/artifacts",
            }
        )
        for k, v in r["params"].items():
            text, typ, num = typed_param(v)
            params.append({"run_id": r["id"], "key": k, "value": text, "type": typ, "num": num, "run_start": start})
        metrics += [
            {"run_id": r["id"], "key": k, "value": v, "step": 0, "timestamp": r["start_ms"] / 1000}
            for k, v in r["metrics"].items()
        ]
        tags += [{"run_id": r["id"], "key": k, "value": v} for k, v in r["tags"].items()]
    with st.write() as s:
        for model, rows in ((Run, runs), (Param, params), (Metric, metrics), (LatestMetric, metrics), (Tag, tags)):
            s.execute(model.__table__.insert(), rows)


def start(cmd: list[str], cwd: Path, probe: str, env: dict | None = None) -> subprocess.Popen:
    """Start a server in its own process group and wait until `probe` answers."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(probe, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"{' '.join(cmd)} did not answer within 180 s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server's process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def timed_pair(fa, fb, repeats: int) -> tuple[float, float, object, object]:
    """Median seconds of fa and fb, called alternately (same machine load for both) after two warm-ups."""
    ra = rb = None
    for _ in range(2):
        ra, rb = fa(), fb()
    ta, tb = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        ra = fa()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        rb = fb()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb), ra, rb


def main() -> None:
    """Run the benchmark and print figures and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--scale", action="store_true", help="page times at --runs (1M) runs and --requests logged requests"
    )
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--keep", help="--scale: fill this workspace folder once and reuse it (default: .bench-cache)")
    ap.add_argument("--fresh", action="store_true", help="--scale: refill the cached workspace")
    a = ap.parse_args()
    if a.scale:
        import ui_scale

        if a.runs == 10_000:
            a.runs = 1_000_000
        ui_scale.run(a)
        return
    print(f"machine: {machine()}")
    print(f"data: {a.runs:,} runs (4 params, 2 metrics, 1 tag); page size {PER_PAGE}; filter: {FILTER}")
    data = make_data(a.runs)
    mlpy = mlflow_python()
    with tempfile.TemporaryDirectory(prefix="roost-bench-ui-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        load_roost(tmp / "roost", data)
        (tmp / "mlflow").mkdir()
        spec = {
            "uri": f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
            "artifacts": str(tmp / "mlflow" / "art"),
            "runs": data,
        }
        (tmp / "spec.json").write_text(json.dumps(spec))
        loaded = run_driver(mlpy, MLFLOW_LOADER, [str(tmp / "spec.json")], cwd=tmp)
        print(f"[setup: both stores loaded in {time.perf_counter() - t0:.1f} s]", flush=True)

        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        rp, mp = free_port(), free_port()
        roost_base, ml_base = f"http://127.0.0.1:{rp}", f"http://127.0.0.1:{mp}"
        procs = []
        try:
            procs.append(
                start(
                    [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(rp)],
                    tmp / "roost",
                    roost_base + "/api/experiments",
                    env=env,
                )
            )
            mlflow_bin = str(Path(mlpy).parent / "mlflow")
            procs.append(
                start(
                    [
                        mlflow_bin,
                        "ui",
                        "--backend-store-uri",
                        spec["uri"],
                        "--default-artifact-root",
                        spec["artifacts"],
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(mp),
                        "--workers",
                        "1",
                    ],
                    tmp / "mlflow",
                    ml_base + "/health",
                )
            )
            figures = measure(roost_base, ml_base, str(loaded["experiment_id"]), a.repeats)
        finally:
            for p in procs:
                stop(p)
    print(
        f"filter matches: roost {figures['roost_total']:,}, MLflow {loaded['matches']:,} "
        f"({'same' if figures['roost_total'] == loaded['matches'] else 'DIFFERENT'})"
    )
    for label, key in (
        ("(1) first page, newest first", "first"),
        ("(2) filter + sort by metrics.auc", "filter"),
        (f"(3) deep page (rows {DEEP_OFFSET + 1:,}+)", "deep"),
    ):
        r, m, srv, same = figures[key]
        print(row(f"{label}, HTTP", r, m) + f"   (roost server time {fmt_s(srv)}; same runs {same}/{PER_PAGE})")
    worst = max(figures[k][2] for k in ("first", "filter", "deep"))
    print(
        f"target: roost server time < 300 ms for every page -> {'met' if worst < 0.3 else 'MISSED'} "
        f"(worst {fmt_s(worst)})"
    )
    print(f"ratio: {figures['first'][1] / figures['first'][0]:.1f}")


def measure(roost_base: str, ml_base: str, eid: str, repeats: int) -> dict:
    """Median HTTP times (roost, MLflow, roost server time) for the three queries."""
    import base64
    import re

    client = httpx.Client(timeout=120)
    search = ml_base + "/api/2.0/mlflow/runs/search"
    out: dict = {}

    def roost_get(params: dict) -> tuple[float, str]:
        r = client.get(roost_base + "/runs", params={"experiment": "bench", "per_page": PER_PAGE, **params})
        r.raise_for_status()
        assert 'id="runs-table"' in r.text
        return float(r.headers["server-timing"].split("dur=")[1]) / 1000, r.text

    def ml_post(body: dict) -> dict:
        r = client.post(search, json={"experiment_ids": [eid], "max_results": PER_PAGE, **body})
        r.raise_for_status()
        return r.json()

    cases = {
        "first": ({}, {"order_by": ["attributes.start_time DESC"]}),
        "filter": ({"q": FILTER, "order": "metrics.auc DESC"}, {"filter": FILTER, "order_by": ["metrics.auc DESC"]}),
        "deep": (
            {"page": DEEP_OFFSET // PER_PAGE + 1},
            {
                "order_by": ["attributes.start_time DESC"],
                "page_token": base64.b64encode(json.dumps({"offset": DEEP_OFFSET}).encode()).decode(),
            },
        ),
    }
    for key, (rq, mq) in cases.items():
        server: list[float] = []

        def roost_once() -> str:
            srv, text = roost_get(rq)
            server.append(srv)
            return text

        rt, mt, text, body = timed_pair(roost_once, lambda: ml_post(mq), repeats)
        roost_ids = re.findall(r'<tr data-run-id="(\w+)"', text)
        ml_ids = [r["info"]["run_id"] for r in body.get("runs", [])]
        assert len(roost_ids) == len(ml_ids) == PER_PAGE, (key, len(roost_ids), len(ml_ids))
        out[key] = (rt, mt, statistics.median(server[2:]), len(set(roost_ids) & set(ml_ids)))
        if key == "filter":
            out["roost_total"] = int(re.search(r"of ([\d,]+) runs", text).group(1).replace(",", ""))
    return out


if __name__ == "__main__":
    main()
