"""Model repository benchmark: roost vs MLflow 3.17.2, both on SQLite in a fresh temp dir, same data.

  (a) log 10,000 metric points in one run, wall time until the data is committed (roost: run end included)
  (b) create 1,000 runs, each with 3 params and 1 metric
  (c) search 2,000 runs with `params.lr = '0.01' and metrics.auc >= 0.9` (median of 7; counts must agree)
  (d) `roost runs import-mlflow` of the store MLflow wrote (all its runs and points), into a fresh workspace

roost's store runs SQLite in WAL mode with synchronous=NORMAL (a commit survives a process crash, not a power
cut); MLflow's uses SQLite's defaults (rollback journal, synchronous=FULL: fsync per commit). (a') and (b')
repeat (a) and (b) with roost at synchronous=FULL, so the durability guarantee is the same on both sides.

roost runs in this process (.venv); MLflow runs in its own venv (.bench/mlflow, created if missing) as a
subprocess driver. Prints every figure, the ratio per figure, and last `ratio: X` = MLflow / roost for (a).

    .venv/bin/python bench/registry.py [--points 10000] [--runs 1000] [--search-runs 2000] [--repeats 7]
    .venv/bin/python bench/registry.py --scale 100000[,1000000] [--backends sqlite,postgresql,mlflow]
        [--mlflow-bound-s 900]   (the repository at scale: see bench/registry_scale.py)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt_s, machine, median_time, mlflow_python, row, run_driver

FILTER = "params.lr = '0.01' and metrics.auc >= 0.9"

MLFLOW_DRIVER = r"""
import json, statistics, sys, time
spec = json.load(open(sys.argv[1]))
import mlflow
from mlflow.tracking import MlflowClient

def err(*a):
    print(*a, file=sys.stderr, flush=True)

mlflow.set_tracking_uri(spec["uri"])
client = MlflowClient()
out = {"mlflow_version": mlflow.__version__}

# warm-up outside every timed window: schema creation (Alembic), ORM compilation, first run
mlflow.set_experiment("warmup")
with mlflow.start_run(run_name="warmup"):
    mlflow.log_param("p", 1)
    mlflow.log_metric("m", 1.0, step=0)

# (a) one run, one log_metric call per point (MLflow's normal synchronous usage)
mlflow.set_experiment("log")
n = spec["points"]
t0 = time.perf_counter()
with mlflow.start_run(run_name="log") as run:
    for i in range(n):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
out["log_s"] = time.perf_counter() - t0
out["log_points_stored"] = len(client.get_metric_history(run.info.run_id, "loss"))
err(f"mlflow (a) {out['log_s']:.2f}s")

# (b) create runs with params and a metric; the first `runs` are timed, the rest only populate (c)
exp_id = mlflow.set_experiment("search").experiment_id
runs = spec["data"]

def make(rs):
    for r in rs:
        with mlflow.start_run(run_name=r["name"]):
            mlflow.log_params(r["params"])
            mlflow.log_metric("auc", r["auc"])

t0 = time.perf_counter()
make(runs[:spec["runs"]])
out["create_s"] = time.perf_counter() - t0
err(f"mlflow (b) {out['create_s']:.2f}s")
t0 = time.perf_counter()
make(runs[spec["runs"]:])
out["populate_s"] = time.perf_counter() - t0

# (c) search: MlflowClient.search_runs (Run entities) and mlflow.search_runs (pandas DataFrame)
def med(fn):
    ts, res = [], None
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        res = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), res

out["search_client_s"], res = med(lambda: client.search_runs([exp_id], spec["filter"], max_results=50000))
out["search_client_names"] = sorted(r.info.run_name for r in res)
out["search_df_s"], df = med(lambda: mlflow.search_runs([exp_id], spec["filter"], max_results=50000))
out["search_df_count"] = len(df)
out["total_runs"] = len(client.search_runs([exp_id], max_results=50000))
print(json.dumps(out))
"""


def make_data(n: int, seed: int = 7) -> list[dict]:
    """n runs: params lr (float), depth (int), model (str) and an auc, deterministic."""
    rng = random.Random(seed)
    return [
        {
            "name": f"run-{i:05d}",
            "params": {
                "lr": rng.choice([0.001, 0.01, 0.1]),
                "depth": rng.randint(3, 8),
                "model": rng.choice(["gbm", "mlp", "linear"]),
            },
            "auc": round(rng.uniform(0.5, 1.0), 4),
        }
        for i in range(n)
    ]


def _sync_full(store) -> None:
    """Make roost's SQLite fsync every commit (synchronous=FULL, MLflow's SQLite default) for this store."""
    from sqlalchemy import event

    event.listen(store.engine, "connect", lambda conn, _rec: conn.execute("PRAGMA synchronous=FULL"))
    store.engine.dispose()  # pooled connections reconnect with the pragma


def bench_roost(root: Path, data: list[dict], points: int, runs: int, repeats: int, sync_full: bool = False) -> dict:
    """The three figures for roost, in this process (sync_full: only (a) and (b), fsync on every commit)."""
    import roost
    from roost import workspace  # `roost.workspace` is not a lazy attribute of the facade
    from roost.registry.api import metric_history
    from roost.registry.store import default_store

    roost.init(root)
    workspace.use(root)
    if sync_full:
        _sync_full(default_store())
    out: dict = {}
    with default_store().engine.connect() as conn:
        out["synchronous"] = conn.exec_driver_sql("PRAGMA synchronous").scalar()  # 1 NORMAL, 2 FULL
    with roost.start_run(experiment="warmup", name="warmup", params={"p": 1}) as run:
        run.log_metric("m", 1.0, step=0)
    roost.search_runs(filter=FILTER, experiment="warmup")

    # (a) buffered points; the `with` exit flushes and ends the run: after it, every point is committed
    t0 = time.perf_counter()
    with roost.start_run(experiment="log", name="log") as run:
        for i in range(points):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        out["log_calls_s"] = time.perf_counter() - t0
    out["log_s"] = time.perf_counter() - t0
    out["log_points_stored"] = len(metric_history(run.id, "loss"))

    def make(rs: list[dict]) -> None:
        for r in rs:
            with roost.start_run(experiment="search", name=r["name"], params=r["params"]) as run:
                run.log_metric("auc", r["auc"])

    t0 = time.perf_counter()
    make(data[:runs])
    out["create_s"] = time.perf_counter() - t0
    if sync_full:
        return out
    t0 = time.perf_counter()
    make(data[runs:])
    out["populate_s"] = time.perf_counter() - t0

    out["search_s"], res = median_time(
        lambda: roost.search_runs(filter=FILTER, experiment="search", limit=None), repeats
    )
    out["search_names"] = sorted(r["name"] for r in res)
    out["total_runs"] = len(roost.search_runs(experiment="search", limit=None))
    return out


def bench_import(root: Path, uri: str) -> dict:
    """(d): import MLflow's store (written above) into a fresh roost workspace with `roost runs import-mlflow`."""
    from roost import workspace
    from roost.registry.importer import import_mlflow
    from roost.registry.store import default_store

    roost.init(root)
    workspace.use(root)
    st = default_store()
    t0 = time.perf_counter()
    rep = import_mlflow(uri, st)
    return {"import_s": time.perf_counter() - t0, "runs": rep.runs, "points": rep.metric_points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--search-runs", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--scale", default="", help="comma-separated run counts, e.g. 100000,1000000 (scale bench)")
    ap.add_argument("--backends", default="sqlite,postgresql,mlflow", help="with --scale: stores to measure")
    ap.add_argument("--mlflow-bound-s", type=float, default=900, help="with --scale: MLflow's populate budget")
    ap.add_argument("--create-runs", type=int, default=300, help="with --scale: runs created on the full store")
    a = ap.parse_args()
    if a.scale:
        import registry_scale

        print(f"machine: {machine()}")
        sizes = [int(x) for x in a.scale.split(",") if x.strip()]
        backends = [b.strip() for b in a.backends.split(",") if b.strip()]
        registry_scale.main(sizes, backends, max(a.repeats, 21), a.mlflow_bound_s, a.create_runs)
        return
    if a.search_runs < a.runs:
        ap.error("--search-runs must be >= --runs (the created runs are part of the searched set)")

    py = mlflow_python()
    tmp = Path(tempfile.mkdtemp(prefix="roost-bench-registry-"))
    data = make_data(a.search_runs)
    print(f"machine: {machine()}")
    print(f"data: {a.points} points; {a.runs} timed runs of {a.search_runs} searched; filter: {FILTER}")
    cwd = os.getcwd()
    try:
        (tmp / "roost").mkdir()
        os.chdir(tmp / "roost")  # no git checkout around, for both tools
        t0 = time.perf_counter()
        r = bench_roost(tmp / "roost", data, a.points, a.runs, a.repeats)
        print(f"[roost done in {time.perf_counter() - t0:.1f} s]", flush=True)
        (tmp / "roost-full").mkdir()
        os.chdir(tmp / "roost-full")
        rf = bench_roost(tmp / "roost-full", data, a.points, a.runs, a.repeats, sync_full=True)
        (tmp / "mlflow").mkdir()
        spec = {
            "uri": f"sqlite:///{tmp / 'mlflow' / 'mlflow.db'}",
            "points": a.points,
            "runs": a.runs,
            "repeats": a.repeats,
            "filter": FILTER,
            "data": data,
        }
        (tmp / "mlflow" / "spec.json").write_text(json.dumps(spec))
        t0 = time.perf_counter()
        m = run_driver(
            py,
            MLFLOW_DRIVER,
            [str(tmp / "mlflow" / "spec.json")],
            cwd=tmp / "mlflow",
            env={
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                "GIT_PYTHON_REFRESH": "quiet",
                "MLFLOW_TRACKING_URI": spec["uri"],
            },
        )
        print(f"[mlflow {m['mlflow_version']} done in {time.perf_counter() - t0:.1f} s]", flush=True)
        (tmp / "roost-import").mkdir()
        os.chdir(tmp / "roost-import")
        imp = bench_import(tmp / "roost-import", spec["uri"])
    finally:
        os.chdir(cwd)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"stored points: roost {r['log_points_stored']}, MLflow {m['log_points_stored']}; "
        f"searched runs: roost {r['total_runs']}, MLflow {m['total_runs']}"
    )
    print(f"roost SQLite synchronous: main {r['synchronous']}, (a')/(b') {rf['synchronous']} (1 NORMAL, 2 FULL)")
    if {r["log_points_stored"], rf["log_points_stored"], m["log_points_stored"]} != {a.points}:
        raise SystemExit("a tool lost metric points")
    nr, nm, nd = len(r["search_names"]), len(m["search_client_names"]), m["search_df_count"]
    print(
        f"search matches: roost {nr}, MLflow {nm} (DataFrame {nd}), same runs: "
        f"{r['search_names'] == m['search_client_names']}"
    )
    if not (nr == nm == nd) or r["search_names"] != m["search_client_names"]:
        raise SystemExit("roost and MLflow disagree on the search result")
    print(
        f"roost (a) split: {fmt_s(r['log_calls_s'])} in log_metric calls "
        f"({r['log_calls_s'] / a.points * 1e6:.1f} us/point), {fmt_s(r['log_s'] - r['log_calls_s'])} flush+end"
    )
    print(row(f"(a) log {a.points:,} points, one run", r["log_s"], m["log_s"]))
    print(row(f"(b) create {a.runs:,} runs (3 params, 1 metric)", r["create_s"], m["create_s"]))
    print("  same two with roost's SQLite at synchronous=FULL (fsync per commit, as MLflow's SQLite default):")
    print(row(f"(a') log {a.points:,} points, fsync per commit", rf["log_s"], m["log_s"]))
    print(row(f"(b') create {a.runs:,} runs, fsync per commit", rf["create_s"], m["create_s"]))
    print(row(f"    populate {a.search_runs - a.runs:,} more runs (same)", r["populate_s"], m["populate_s"]))
    print(row(f"(c) search {a.search_runs:,} runs, client API", r["search_s"], m["search_client_s"]))
    print(row(f"(c) search {a.search_runs:,} runs, mlflow.search_runs", r["search_s"], m["search_df_s"]))
    print(
        f"(d) import-mlflow of MLflow's store: {imp['runs']:,} runs, {imp['points']:,} points in "
        f"{fmt_s(imp['import_s'])} ({imp['import_s'] / imp['runs'] * 1e3:.2f} ms/run; MLflow wrote them in "
        f"{fmt_s(m['create_s'] + m['populate_s'] + m['log_s'])})"
    )
    per_run = r["create_s"] / a.runs * 1e3
    print(
        f"roost (b) per run: {per_run:.2f} ms (target <= 1 ms on a quiet machine), "
        f"MLflow {m['create_s'] / a.runs * 1e3:.2f} ms"
    )
    print(
        f"targets: (a) >= 30x -> {'met' if m['log_s'] / r['log_s'] >= 30 else 'MISSED'}; "
        f"(b) >= 10x -> {'met' if m['create_s'] / r['create_s'] >= 10 else 'MISSED'}; "
        f"(c) no slower -> {'met' if r['search_s'] <= m['search_client_s'] else 'MISSED'}"
    )
    print(f"ratio: {m['log_s'] / r['log_s']:.1f}")


if __name__ == "__main__":
    main()
