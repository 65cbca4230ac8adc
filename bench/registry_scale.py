"""`bench/registry.py --scale N[,N...]`: the repository at 100k / 1M runs (roost on SQLite and PostgreSQL, MLflow).

Each store is populated in bulk (roost on SQLite: Store.bulk_insert, 5,000 runs a transaction; roost on PostgreSQL:
COPY with the secondary indexes dropped first and rebuilt after, as pg_restore loads a dump; MLflow 3.17.2: inserts
through its own SQLAlchemy tables in its venv, stopped when --mlflow-bound-s is spent), then timed, p50/p99 of
--repeats calls each (constants vary between calls). MLflow's bounds: populate --mlflow-bound-s (default 900 s);
each search_runs call interrupted inside SQLite after MLFLOW_CALL_BOUND_S (120 s; the figure then reads "> 120 s"
and stops); each figure stops after 60 s of calls.
  create   roost.start_run with 3 params, 2 tags and 1 metric on the populated store (ms/run)
  search   filters on a param, a latest metric, a tag, status and time; ORDER BY a metric; a filter + ORDER BY;
           a keyset page in the middle; 100 rows a page
  count    matching runs of a param filter, a tag filter, 3 common conditions (the UI's count: exact up to
           10,000 within the newest 10,000 runs, else estimated or "10,000+")
  ui       the runs page: plain, filtered, 3 common conditions, sorted by a metric, filtered + sorted, with
           archived runs; the compare page of 100 runs and their charts: server time from the UI's TestClient
Every run has 3 params, 2 tags, the latest of 2 metrics and 5 points of history (the metric history table is
5x the runs). A figure stops repeating after 60 s of calls (FIGURE_BOUND_S; MLflow's after 60 s too). Prints one
table per store; MLflow's populate rate and how far it got within its bound.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import mlflow_python, run_driver

T0 = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = ("gbm", "mlp", "linear")
TEAMS = ("ads", "search", "growth", "risk", "core")
BATCH = 5000


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of xs (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def synth(i: int, rng: random.Random) -> dict[str, Any]:
    """Run number i: params lr/depth/model, tags team/cohort, auc and loss (5 history points)."""
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "i": i,
        "start": T0 + timedelta(seconds=30 * i + rng.random()),
        "status": "FAILED" if rng.random() < 0.03 else "FINISHED",
        "params": {"lr": rng.choice((0.001, 0.01, 0.1)), "depth": rng.randint(3, 12), "model": rng.choice(MODELS)},
        "tags": {"team": rng.choice(TEAMS), "cohort": f"c{rng.randint(0, 999)}"},
        "auc": round(rng.uniform(0.5, 1.0), 6),
        "loss": [round(rng.uniform(0.1, 1.0) / (s + 1), 6) for s in range(5)],
    }


def batches(n: int, seed: int = 3) -> Iterator[list[dict[str, Any]]]:
    """The n synthetic runs, BATCH at a time (deterministic)."""
    rng = random.Random(seed)
    for lo in range(0, n, BATCH):
        yield [synth(i, rng) for i in range(lo, min(n, lo + BATCH))]


def populate_roost(store: Any, n: int, experiments: int = 10) -> float:
    """Bulk-insert n runs over `experiments` experiments into a roost store; returns seconds."""
    eids = [store.get_or_create_experiment(f"exp-{k}") for k in range(experiments)]
    t0 = time.perf_counter()
    for batch in batches(n):
        runs, params, tags, points = [], [], [], []
        for r in batch:
            eid = eids[r["i"] % experiments]
            runs.append(
                {
                    "id": r["id"],
                    "experiment_id": eid,
                    "name": f"run-{r['i']}",
                    "status": r["status"],
                    "start_time": r["start"],
                    "end_time": r["start"] + timedelta(seconds=20),
                    "heartbeat_at": r["start"] + timedelta(seconds=20),
                    "user": "bench",
                    "source": "bench",
                    "artifact_uri": f"file:///bench/{eid}/{r['id']}/artifacts",
                }
            )
            params += [(r["id"], k, v) for k, v in r["params"].items()]
            tags += [(r["id"], k, v) for k, v in r["tags"].items()]
            ts = r["start"].timestamp()
            points += [(r["id"], "loss", v, s, ts + s) for s, v in enumerate(r["loss"])]
            points.append((r["id"], "auc", r["auc"], 0, ts + 5))
        store.bulk_insert(runs, params, tags, points)
    return time.perf_counter() - t0


_BULK_TABLES = ("runs", "params", "tags", "metrics", "latest_metrics")
_COPY_RUNS = (
    'COPY runs (id, experiment_id, name, status, start_time, end_time, heartbeat_at, "user", source, artifact_uri) '
    "FROM STDIN"
)


def populate_pg_copy(store: Any, n: int, experiments: int = 10, per_txn: int = 50_000) -> float:
    """Bulk-load n runs into a PostgreSQL roost store as pg_restore does; returns seconds.

    The secondary indexes of the run tables are dropped, the rows go in with COPY (per_txn runs a transaction;
    foreign keys checked), then the same indexes are created again from their stored definitions — the store ends
    exactly as `Store.bulk_insert` would leave it (same rows, same schema), only built faster.
    """
    from roost.registry.store import typed_param

    eids = [store.get_or_create_experiment(f"exp-{k}") for k in range(experiments)]
    t0 = time.perf_counter()
    raw = store.engine.raw_connection()
    try:
        con = raw.driver_connection
        with con.cursor() as cur:
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                (list(_BULK_TABLES),),
            )
            defs = cur.fetchall()
            for name, _ in defs:
                cur.execute(f'DROP INDEX "{name}"')
            con.commit()
            done = 0
            for batch in batches(n):
                with cur.copy(_COPY_RUNS) as cp:
                    for r in batch:
                        eid = eids[r["i"] % experiments]
                        end = r["start"] + timedelta(seconds=20)
                        uri = f"file:///bench/{eid}/{r['id']}/artifacts"
                        cp.write_row(
                            (r["id"], eid, f"run-{r['i']}", r["status"], r["start"], end, end, "bench", "bench", uri)
                        )
                with cur.copy("COPY params (run_id, key, value, type, num, run_start) FROM STDIN") as cp:
                    for r in batch:  # run_start: the run's start_time (roost's param sorts order ties by it)
                        for k, v in r["params"].items():
                            cp.write_row((r["id"], k, *typed_param(v), r["start"]))
                with cur.copy("COPY tags (run_id, key, value) FROM STDIN") as cp:
                    for r in batch:
                        for k, v in r["tags"].items():
                            cp.write_row((r["id"], k, v))
                with cur.copy('COPY metrics (run_id, key, value, step, "timestamp") FROM STDIN') as cp:
                    for r in batch:
                        ts = r["start"].timestamp()
                        for st, v in enumerate(r["loss"]):
                            cp.write_row((r["id"], "loss", v, st, ts + st))
                        cp.write_row((r["id"], "auc", r["auc"], 0, ts + 5))
                with cur.copy('COPY latest_metrics (run_id, key, value, step, "timestamp") FROM STDIN') as cp:
                    for r in batch:  # the greatest (step, timestamp) of each key, as bulk_insert derives it
                        ts = r["start"].timestamp()
                        cp.write_row((r["id"], "loss", r["loss"][-1], 4, ts + 4))
                        cp.write_row((r["id"], "auc", r["auc"], 0, ts + 5))
                done += len(batch)
                if done % per_txn == 0 or done == n:
                    con.commit()
                    print(f"    copied {done:,} runs ({time.perf_counter() - t0:.0f} s)", flush=True)
            t_idx = time.perf_counter()
            for _, ddl in defs:
                cur.execute(ddl)
            con.commit()
            print(f"    {len(defs)} indexes rebuilt in {time.perf_counter() - t_idx:.0f} s", flush=True)
    finally:
        raw.close()
    return time.perf_counter() - t0


FIGURE_BOUND_S = 60.0  # a figure stops repeating once its calls took this long (the line says how many ran)


def timed(fn: Callable[[int], Any], repeats: int) -> tuple[float, float, Any]:
    """(p50 s, p99 s, last result) of fn(k) for k in range(repeats), after one warm-up call."""
    out = fn(repeats)
    ts: list[float] = []
    for k in range(repeats):
        t = time.perf_counter()
        out = fn(k)
        ts.append(time.perf_counter() - t)
        if sum(ts) > FIGURE_BOUND_S:
            print(f"  (stopped after {len(ts)} calls: {FIGURE_BOUND_S:.0f} s bound)")
            break
    return statistics.median(ts), pct(ts, 0.99), out


def roost_figures(n: int, repeats: int, create_runs: int) -> dict[str, tuple[float, float]]:
    """Time creation, searches, counts and UI pages on the current workspace's store (populated with n runs)."""
    from starlette.testclient import TestClient

    import roost
    from roost.registry.store import default_store
    from roost.ui import create_app
    from roost.ui import data as ui_data

    st = default_store()
    mid = T0 + timedelta(seconds=15 * n)
    figs: dict[str, tuple[float, float]] = {}

    def search(flt: str | None = None, order: str | None = None, after: Any = None) -> list[dict[str, Any]]:
        return st.search_runs(flt, order_by=order, limit=100, after=after)

    cases: dict[str, Callable[[int], Any]] = {
        "filter param (model, depth)": lambda k: search(
            f"params.model = '{MODELS[k % 3]}' AND params.depth = {3 + k % 9}"
        ),
        "filter latest metric auc >= x": lambda k: search(f"metrics.auc >= {0.999 - k * 1e-5}"),
        "filter tag (team)": lambda k: search(f"tags.team = '{TEAMS[k % 5]}'"),
        "filter tag (rare cohort)": lambda k: search(f"tags.cohort = 'c{k}'"),
        "filter status FAILED": lambda k: search("status = 'FAILED'"),
        "filter time window": lambda k: search(
            f"start_time >= '{(mid + timedelta(hours=k)).isoformat()}' AND "
            f"start_time < '{(mid + timedelta(hours=k + 2)).isoformat()}'"
        ),
        "order by metrics.auc DESC": lambda k: search(None, "metrics.auc DESC" if k % 2 else "metrics.auc ASC"),
        "filter param + order by metric": lambda k: search(f"params.model = '{MODELS[k % 3]}'", "metrics.auc DESC"),
        "keyset page (middle)": lambda k: search(after=(mid + timedelta(hours=k), "0" * 32)),
        "count: param filter": lambda k: ui_data.count_runs(f"params.model = '{MODELS[k % 3]}'"),
        "count: tag filter": lambda k: ui_data.count_runs(f"tags.team = '{TEAMS[k % 5]}'"),
        "count: 3 common conditions": lambda k: ui_data.count_runs(
            f"params.model = '{MODELS[k % 3]}' AND tags.team = '{TEAMS[k % 5]}' AND params.depth = {3 + k % 9}"
        ),
    }
    for label, fn in cases.items():
        p50, p99, res = timed(fn, repeats)
        figs[label] = (p50, p99)
        got = str(res) if label.startswith("count") else len(res)  # a count as the UI shows it (~N, 10,000+)
        print(f"  {label:<34} p50 {p50 * 1e3:8.1f} ms  p99 {p99 * 1e3:8.1f} ms  ({got} rows)", flush=True)

    client = TestClient(create_app())
    ids = [r["run_id"] for r in search("params.model = 'gbm'", "metrics.auc DESC")][:100]

    def page(url: str) -> float:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:300])
        return float(resp.headers["server-timing"].split("dur=")[1].split(",")[0].split(";")[0]) / 1e3

    pages: dict[str, Callable[[int], str]] = {
        "ui: runs page": lambda k: "/runs",
        "ui: runs page, filter + sort": lambda k: (
            f"/runs?q=params.model+%3D+%27{MODELS[k % 3]}%27&order=metrics.auc+DESC"
        ),
        "ui: runs page, filter": lambda k: f"/runs?q=tags.team+%3D+%27{TEAMS[k % 5]}%27",
        "ui: runs page, 3 common conditions": lambda k: (
            f"/runs?q=params.model+%3D+%27{MODELS[k % 3]}%27+AND+tags.team+%3D+%27{TEAMS[k % 5]}%27"
            f"+AND+params.depth+%3D+{3 + k % 9}"
        ),
        "ui: runs page, sort by metric": lambda k: "/runs?order=metrics.auc+" + ("DESC" if k % 2 else "ASC"),
        "ui: runs page, include archived": lambda k: "/runs?archived=1",
        "ui: compare 100 runs": lambda k: "/compare?runs=" + ",".join(ids),
        "ui: charts of 100 runs (api)": lambda k: "/api/charts?runs=" + ",".join(ids),
    }
    for label, url in pages.items():
        page(url(0))
        ts = []
        for k in range(repeats):
            ts.append(page(url(k)))
            if sum(ts) > FIGURE_BOUND_S:
                break
        figs[label] = (statistics.median(ts), pct(ts, 0.99))
        print(f"  {label:<34} p50 {figs[label][0] * 1e3:8.1f} ms  p99 {figs[label][1] * 1e3:8.1f} ms (server)")

    def create(k: int) -> None:
        for j in range(create_runs):
            with roost.start_run(
                experiment="exp-0", params={"lr": 0.01, "depth": j % 7, "model": "gbm"}, tags={"team": "ads", "k": k}
            ) as r:
                r.log_metric("auc", 0.5)

    t = time.perf_counter()
    create(0)
    per = (time.perf_counter() - t) / create_runs
    figs["create a run (ms/run)"] = (per, per)
    print(f"  {'create a run':<34} {per * 1e3:.2f} ms/run ({create_runs} runs on the populated store)", flush=True)
    return figs


def bench_roost(url: str | None, n: int, repeats: int, create_runs: int) -> dict[str, Any]:
    """Populate a fresh workspace (SQLite, or the PostgreSQL database `url`) with n runs, then time it."""
    from roost import workspace
    from roost.registry.store import default_store

    if url:
        os.environ["ROOST_STORE_URL"] = url
    else:
        os.environ.pop("ROOST_STORE_URL", None)
    root = Path(tempfile.mkdtemp(prefix="roost-scale-"))
    ws = roost.init(root / "ws")
    workspace.use(ws)
    cwd = os.getcwd()
    os.chdir(root)  # no git checkout around (run creation would start `git status`)
    st = default_store()
    pg = st.engine.dialect.name == "postgresql"
    fill = populate_pg_copy(st, n) if pg else populate_roost(st, n)
    how = "COPY, indexes rebuilt after" if pg else "bulk_insert"
    print(f"  populated {n:,} runs in {fill:.1f} s ({fill / n * 1e6:.0f} us/run, {how})", flush=True)
    if st.engine.dialect.name == "postgresql":
        with st.engine.connect() as conn:  # autovacuum would do it soon after a bulk load
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    else:
        with st.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    try:
        return {"populate_s": fill, "figures": roost_figures(n, repeats, create_runs)}
    finally:
        workspace.use(None)
        os.chdir(cwd)  # not left in the removed folder (a peer's subprocess would start there)
        shutil.rmtree(root, ignore_errors=True)


MLFLOW_SCALE = r"""
import json, statistics, sys, time, uuid, random
spec = json.load(open(sys.argv[1]))
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
from sqlalchemy import event
store = SqlAlchemyStore(spec["uri"], spec["artifacts"])
deadline = [float("inf")]  # a search call past its bound is interrupted inside SQLite (progress handler)

@event.listens_for(store.engine, "checkout")
def _bound(dbapi_con, rec, proxy):
    dbapi_con.set_progress_handler(lambda: int(time.perf_counter() > deadline[0]), 100000)
eid = store.create_experiment("bench")
rng = random.Random(3)
n, done, t0, bound = spec["runs"], 0, time.perf_counter(), spec["bound_s"]
models, teams = ["gbm", "mlp", "linear"], ["ads", "search", "growth", "risk", "core"]
while done < n and time.perf_counter() - t0 < bound:
    runs, params, metrics, latest, tags = [], [], [], [], []
    for i in range(done, min(n, done + 5000)):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        start = 1735689600000 + 30000 * i
        runs.append(dict(run_uuid=rid, name=f"run-{i}", source_type="LOCAL", source_name="bench", entry_point_name="",
                         user_id="bench", status="FAILED" if rng.random() < 0.03 else "FINISHED", start_time=start,
                         end_time=start + 20000, source_version="", lifecycle_stage="active",
                         artifact_uri=spec["artifacts"] + "/" + rid, experiment_id=int(eid)))
        p = {"lr": rng.choice([0.001, 0.01, 0.1]), "depth": rng.randint(3, 12), "model": rng.choice(models)}
        params += [dict(key=k, value=str(v), run_uuid=rid) for k, v in p.items()]
        tags += [dict(key="team", value=rng.choice(teams), run_uuid=rid),
                 dict(key="cohort", value=f"c{rng.randint(0, 999)}", run_uuid=rid),
                 dict(key="mlflow.runName", value=f"run-{i}", run_uuid=rid)]
        auc = round(rng.uniform(0.5, 1.0), 6)
        loss = [round(rng.uniform(0.1, 1.0) / (s + 1), 6) for s in range(5)]
        metrics += [dict(key="loss", value=v, timestamp=start + s, step=s, is_nan=False, run_uuid=rid)
                    for s, v in enumerate(loss)]
        metrics.append(dict(key="auc", value=auc, timestamp=start + 5, step=0, is_nan=False, run_uuid=rid))
        latest += [dict(key="loss", value=loss[-1], timestamp=start + 4, step=4, is_nan=False, run_uuid=rid),
                   dict(key="auc", value=auc, timestamp=start + 5, step=0, is_nan=False, run_uuid=rid)]
    with store.ManagedSessionMaker() as s:
        for model, rows in ((SqlRun, runs), (SqlParam, params), (SqlMetric, metrics), (SqlLatestMetric, latest),
                            (SqlTag, tags)):
            s.execute(model.__table__.insert(), rows)
    done += len(runs)
out = {"populated": done, "populate_s": time.perf_counter() - t0, "figures": {}}
print(f"  mlflow populated {done:,} runs in {out['populate_s']:.1f} s", file=sys.stderr, flush=True)
cases = {
    "filter param (model, depth)": lambda k: (
        f"params.model = '{models[k % 3]}' AND params.depth = '{3 + k % 9}'", None),
    "filter latest metric auc >= x": lambda k: (f"metrics.auc >= {0.999 - k * 1e-5}", None),
    "filter tag (team)": lambda k: (f"tags.team = '{teams[k % 5]}'", None),
    "filter tag (rare cohort)": lambda k: (f"tags.cohort = 'c{k}'", None),
    "filter status FAILED": lambda k: ("attributes.status = 'FAILED'", None),
    "order by metrics.auc DESC": lambda k: ("", ["metrics.auc DESC" if k % 2 else "metrics.auc ASC"]),
    "filter param + order by metric": lambda k: (f"params.model = '{models[k % 3]}'", ["metrics.auc DESC"]),
}
for label, case in cases.items():
    ts, cut = [], 0
    for k in range(spec["repeats"]):
        flt, order = case(k)
        t = time.perf_counter()
        deadline[0] = t + spec["call_bound_s"]
        try:
            store.search_runs([eid], flt, 1, 100, order_by=order)
        except Exception:  # interrupted at the call bound
            if time.perf_counter() < deadline[0]:
                raise
            cut += 1
        deadline[0] = float("inf")
        ts.append(time.perf_counter() - t)
        if sum(ts) > spec["query_bound_s"] or cut:
            break
    ts.sort()
    out["figures"][label] = [statistics.median(ts), ts[min(len(ts) - 1, round(0.99 * (len(ts) - 1)))], len(ts), cut]
    print(f"  mlflow {label:<34} p50 {out['figures'][label][0]*1e3:8.1f} ms ({len(ts)} calls, {cut} cut)",
          file=sys.stderr, flush=True)
print(json.dumps(out))
"""


MLFLOW_CALL_BOUND_S = 120.0  # one MLflow search_runs call is interrupted (inside SQLite) after this long


def bench_mlflow(n: int, repeats: int, bound_s: float) -> dict[str, Any]:
    """MLflow 3.17.2 on SQLite: bulk-populate up to n runs within bound_s, then time its searches."""
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-scale-"))
    spec = {
        "uri": f"sqlite:///{tmp / 'mlflow.db'}",
        "artifacts": str(tmp / "artifacts"),
        "runs": n,
        "bound_s": bound_s,
        "repeats": repeats,
        "query_bound_s": 60,
        "call_bound_s": MLFLOW_CALL_BOUND_S,
    }
    (tmp / "spec.json").write_text(json.dumps(spec))
    env = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    try:
        out = run_driver(mlflow_python(), MLFLOW_SCALE, [str(tmp / "spec.json")], cwd=tmp, env=env, timeout=7200)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  populated {out['populated']:,} runs in {out['populate_s']:.1f} s (bulk, its own tables)")
    for label, (p50, p99, calls, cut) in out["figures"].items():
        if cut:
            print(f"  {label:<34} > {MLFLOW_CALL_BOUND_S:.0f} s: a call was stopped at the bound", flush=True)
        else:
            print(f"  {label:<34} p50 {p50 * 1e3:8.1f} ms  p99 {p99 * 1e3:8.1f} ms  ({calls} calls)", flush=True)
    return out


def main(sizes: list[int], backends: list[str], repeats: int, mlflow_bound_s: float, create_runs: int) -> None:
    """Run the scale bench for each size and backend; print the figures and a JSON summary line."""
    from _servers import create_database, postgres

    results: dict[str, Any] = {}
    pg_cm = postgres() if "postgresql" in backends else None
    pg_base = pg_cm.__enter__() if pg_cm is not None else None
    try:
        for n in sizes:
            for be in (b for b in backends if b in ("sqlite", "postgresql")):
                print(f"roost on {be}, {n:,} runs:", flush=True)
                url = create_database(pg_base, f"scale_{n}") if be == "postgresql" and pg_base else None
                results[f"roost-{be}-{n}"] = bench_roost(url, n, repeats, create_runs)
            if "mlflow" in backends:
                print(f"MLflow on SQLite, up to {n:,} runs within {mlflow_bound_s:.0f} s:", flush=True)
                results[f"mlflow-sqlite-{n}"] = bench_mlflow(n, repeats, mlflow_bound_s)
    finally:
        if pg_cm is not None:
            pg_cm.__exit__(None, None, None)
    print(json.dumps(results, default=str))
