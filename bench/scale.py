"""Scale-out figures, one section per question (pick with --sections; the default runs them all, in order):

  registry  repository write throughput SQLite vs PostgreSQL with 1/4/16 writer processes. Each writer process
            opens the store, starts 4 runs and logs 500 steps x 4 metrics per run (buffered, as training does), so
            rows/s counts durable metric rows in the database.
  online    online feature reads SQLite vs Redis, 1 and 100 entities per request, through roost's own feature
            store (one entity, one feature view of 5 fields on generated data, materialised into both stores and
            read with OnlineFetcher, the serving hot path; plain redis-py pipelined HMGETs as the client's
            floor). Calls alternate between the stores in rounds so that load from other jobs hits all alike.
  ddp       `roost train --nproc 2` vs one process on CPU: median seconds per epoch (gaps between val_loss points,
            so start-up and export are left out) of an MLP on roost's engagement table; one process is shown with
            the default threads and with every core, so the comparison at equal cores is visible.
  offline   the offline feature store's PIT join and materialisation at growing sizes (`--sizes 1Mx10M,3Mx30M`),
            roost's local engine vs Spark local[2] (roost's Spark engine and a plain PySpark script): wall, CPU,
            peak RSS, spill; each job in a fresh process (bench/scale_offline.py).
  score     batch scoring rows/s per core: roost.predict local and spark vs a plain pandas + onnxruntime loop.
  limit     the same PIT join on the local engine and roost's Spark engine, each under the same hard memory cap
            (a cgroup per job; `--limit-mem 2g --limit-sizes 1Mx10M,5Mx50M`): where the local engine is killed
            and Spark finishes by spilling; outputs compared on a size both finish (bench/scale_limit.py).

A section is a function `name(args) -> float` that prints its table and returns its headline ratio; SECTIONS lists
them in order, so a new one is a function plus one entry. `ratio: X` (the last section's) is printed last.

    .venv/bin/python bench/scale.py [--sections registry,online,ddp,offline,score] [--entities 100000]
    .venv/bin/python bench/scale.py --sections offline --sizes 1Mx10M,3Mx30M,10Mx100M
    sudo .venv/bin/python bench/scale.py --sections limit --limit-mem 2g --limit-sizes 1Mx10M,5Mx50M
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import create_database, postgres, redis
from scale_limit import limit
from scale_offline import offline, score

# --------------------------------------------------------------------------------------------- registry section
WRITER = r"""
import sys, roost
from roost import workspace
workspace.use(sys.argv[1])
for r in range(4):
    with roost.start_run(experiment="scale", params={"r": r}) as run:
        for i in range(500):
            run.log_metrics({"a": i, "b": i / 2, "c": 1.0, "d": 0.5}, step=i)
"""
ROWS_PER_WRITER = 4 * 500 * 4


def _ws(store_url: str | None) -> Path:
    d = Path(tempfile.mkdtemp(prefix="roost-scale-"))
    if store_url:
        os.environ["ROOST_STORE_URL"] = store_url
    else:
        os.environ.pop("ROOST_STORE_URL", None)
    roost.init(d)
    return d


def writers(n: int, root: Path) -> float:
    """Seconds for n writer processes to finish (all rows durable)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root)], env=os.environ.copy()) for _ in range(n)]
    if any(p.wait() for p in procs):
        raise SystemExit("a writer failed")
    return time.perf_counter() - t0


def registry(args: argparse.Namespace) -> float:
    """Metric rows/s for 1/4/16 writer processes on SQLite and PostgreSQL; returns PG/SQLite at 16 writers."""
    print("registry write throughput (metric rows/s, higher is better)")
    print(f"{'writers':>8} {'sqlite':>12} {'postgresql':>12} {'pg/sqlite':>10}")
    last = 1.0
    with postgres() as base:
        for i, n in enumerate((1, 4, 16)):
            sq = writers(n, _ws(None))
            pg = writers(n, _ws(create_database(base, f"scale_{i}")))
            rs, rp = n * ROWS_PER_WRITER / sq, n * ROWS_PER_WRITER / pg
            last = rp / rs
            print(f"{n:>8} {rs:>12,.0f} {rp:>12,.0f} {last:>10.2f}", flush=True)
    os.environ.pop("ROOST_STORE_URL", None)
    return last


# ----------------------------------------------------------------------------------------------- online section
FIELDS = {"f0": "float64", "f1": "float64", "f2": "int64", "f3": "int64", "f4": "float64"}
END = "2024-01-03T00:00:00+00:00"


def _feature_workspace(entities: int, seed: int) -> Path:
    """A fresh workspace with 2 rows per entity over one day in data/stats.parquet and a view `stats` applied."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roost import workspace
    from roost.features import apply

    for k in ("ROOST_STORE_URL", "ROOST_ONLINE_STORE"):
        os.environ.pop(k, None)
    ws = roost.init(Path(tempfile.mkdtemp(prefix="roost-scale-online-")) / "ws")
    workspace.use(ws)
    rng = np.random.default_rng(seed)
    n = 2 * entities
    t0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    et = t0 + rng.integers(0, 86_400, n) * 1_000_000
    (ws.root / "data").mkdir(exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(
                    np.concatenate([np.arange(entities), rng.integers(0, entities, entities)]), pa.int64()
                ),
                "event_time": pa.array(et, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                "f0": rng.random(n),
                "f1": rng.random(n) * 100,
                "f2": pa.array(rng.integers(0, 1000, n), pa.int64()),
                "f3": pa.array(rng.integers(0, 10, n), pa.int64()),
                "f4": rng.random(n),
            }
        ),
        ws.root / "data" / "stats.parquet",
    )
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "scale.py").write_text(
        textwrap.dedent(f"""
        from datetime import timedelta
        from roost.features import Entity, FeatureView, Source
        user = Entity("user", {{"user_id": "int64"}})
        src = Source("scale_src", path="data/stats.parquet", event_time="event_time")
        stats = FeatureView("stats", user, src, fields={FIELDS!r}, ttl=timedelta(days=7))
    """)
    )
    apply()
    return ws.root


def _pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(q * len(s)))]


def _raw_redis(store) -> Callable:
    """Baseline: the same HMGETs in one redis-py pipeline, bytes not decoded (what the Redis client alone costs)."""
    names = [f"stats:{f}" for f in FIELDS]
    r, prefix = store.r, store.prefix

    def read(ids) -> list:
        pipe = r.pipeline(transaction=False)
        for i in ids.tolist():
            pipe.hmget(f"{prefix}:user_id:{i}", names)
        return pipe.execute()

    return read


def online(args: argparse.Namespace) -> float:
    """Per-call latency and calls/s of OnlineFetcher on SQLite and Redis; returns Redis/SQLite median at 100."""
    import random

    import numpy as np

    from roost.features import OnlineFetcher, materialize
    from roost.features.online_stores import reset_online_stores

    refs = [f"stats:{f}" for f in FIELDS]
    t = time.perf_counter()
    _feature_workspace(args.entities, args.seed)
    print(
        f"online feature reads: {args.entities:,} entities x {len(FIELDS)} fields, OnlineFetcher.fetch, "
        f"one client thread ({time.perf_counter() - t:.1f} s to generate)",
        flush=True,
    )
    rng = random.Random(args.seed)
    batches = {
        n: [np.array([rng.randrange(args.entities) for _ in range(n)], dtype=np.int64) for _ in range(500)]
        for n in (1, 100)
    }
    last = 1.0
    with redis() as redis_url:
        fetchers: dict[str, OnlineFetcher] = {}
        for name, url in (("sqlite", None), ("redis", redis_url)):
            t = time.perf_counter()
            res = materialize(end=END, online_store=url)
            print(f"  materialise into {name}: {res[0].rows:,} entities in {time.perf_counter() - t:.2f} s", flush=True)
            fetchers[name] = OnlineFetcher(refs, ["user_id"], online_store=url)
        for arr in batches[100][:3]:  # both stores hold the same values
            a, b = (fetchers[k].fetch({"user_id": arr}) for k in ("sqlite", "redis"))
            assert all(np.array_equal(a[f], b[f]) for f in FIELDS), "SQLite and Redis disagree"
        calls: dict[str, Callable] = {k: (lambda arr, f=f: f.fetch({"user_id": arr})) for k, f in fetchers.items()}
        calls["redis-py"] = _raw_redis(fetchers["redis"].store)
        assert all(v is not None for v in calls["redis-py"](batches[1][0])[0]), "raw keys do not match roost's"
        print(
            f"{'entities':>8} {'store':>8} {'median µs':>10} {'p99 µs':>9} {'calls/s':>9} {'entities/s':>11} "
            f"{'redis/sqlite (median)':>22}"
        )
        for n, reps in ((1, args.reps1), (100, args.reps100)):
            times: dict[str, list[float]] = {k: [] for k in calls}
            wall: dict[str, float] = dict.fromkeys(calls, 0.0)
            for fn in calls.values():  # warm-up
                for arr in batches[n][:50]:
                    fn(arr)
            rounds = 10
            for r in range(rounds):  # alternate the stores so background load hits both alike
                for name, fn in calls.items():
                    per = times[name]
                    w0 = time.perf_counter()
                    for k in range(r * reps // rounds, (r + 1) * reps // rounds):
                        arr = batches[n][k % len(batches[n])]
                        t = time.perf_counter()
                        fn(arr)
                        per.append(time.perf_counter() - t)
                    wall[name] += time.perf_counter() - w0
            med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
            last = med["redis"] / med["sqlite"]
            for name in calls:
                cps = len(times[name]) / wall[name]
                ratio = f"{last:>22.2f}" if name == "redis" else ""
                print(
                    f"{n:>8} {name:>8} {med[name]:>10.1f} {_pct(times[name], 0.99) * 1e6:>9.1f} {cps:>9,.0f} "
                    f"{cps * n:>11,.0f} {ratio}".rstrip(),
                    flush=True,
                )
        reset_online_stores()
    from roost import workspace

    workspace.use(None)
    return last


# ------------------------------------------------------------------------------------------------------- driver
def _epoch_seconds(run_id: str) -> float:
    """Median seconds between consecutive epochs (val_loss points), so start-up and export are left out."""
    import statistics

    import roost

    ts = sorted(h["timestamp"] for h in roost.registry.api.metric_history(run_id, "val_loss"))
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    return statistics.median(gaps) if gaps else float("nan")


def ddp(args: argparse.Namespace) -> float:
    """`roost train --nproc 2` vs one process: seconds per epoch of an MLP on the engagement table (CPU, gloo)."""
    import roost
    from roost import workspace
    from roost.datasets.engagement import make_engagement_flat

    root = _ws(None)
    workspace.use(root)
    data = root / "engagement.parquet"
    df = make_engagement_flat(args.ddp_rows, seed=args.seed)
    df.drop(columns=["impression_id", "event_time", "label_time"]).to_parquet(data)
    cores = os.cpu_count() or 1
    print(
        f"DDP epoch time: MLP 256-128 (~99k parameters) on {len(df):,} engagement rows, {args.ddp_epochs} epochs, "
        f"median seconds/epoch (lower is better)"
    )
    print(f"{'batch':>6} {'setup':<34} {'s/epoch':>9} {'test_roc_auc':>13}")
    ratio = 1.0
    for batch in (int(b) for b in args.ddp_batches.split(",")):
        cfg = {
            "data": str(data),
            "label": "clicked",
            "model": {"type": "mlp", "params": {"hidden": [256, 128]}},
            "trainer": {"epochs": args.ddp_epochs, "patience": args.ddp_epochs, "batch_size": batch},
        }
        rows = []
        for label, nproc, threads in (
            ("1 process, default threads", 1, None),
            (f"1 process, {cores} threads", 1, cores),
            (f"2 processes (gloo), {max(1, cores // 2)} thread each", 2, None),
        ):
            old = os.environ.pop("ROOST_TRAIN_THREADS", None)
            if threads:
                os.environ["ROOST_TRAIN_THREADS"] = str(threads)
            try:
                res = roost.train(cfg, nproc=nproc, progress=False)
            finally:
                os.environ.pop("ROOST_TRAIN_THREADS", None)
                if old is not None:
                    os.environ["ROOST_TRAIN_THREADS"] = old
            sec = _epoch_seconds(res.run_id)
            rows.append(sec)
            print(f"{batch:>6} {label:<34} {sec:>9.2f} {res.metrics['test_roc_auc']:>13.4f}", flush=True)
        ratio = rows[0] / rows[2]
        print(
            f"{batch:>6} speed-up of 2 processes over 1 (default threads): {ratio:.2f}x; over 1 process using "
            f"every core: {rows[1] / rows[2]:.2f}x",
            flush=True,
        )
    workspace.use(None)
    return ratio


SECTIONS: dict[str, Callable[[argparse.Namespace], float]] = {
    "registry": registry,
    "online": online,
    "ddp": ddp,
    "offline": offline,
    "score": score,
    "limit": limit,
}


def main() -> None:
    """Run the chosen sections in order; print `ratio: X` (the last section's headline ratio) last."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {list(SECTIONS)}")
    ap.add_argument("--entities", type=int, default=100_000, help="online: entities materialised")
    ap.add_argument("--reps1", type=int, default=5000, help="online: timed calls per store, 1 entity")
    ap.add_argument("--reps100", type=int, default=2000, help="online: timed calls per store, 100 entities")
    ap.add_argument("--ddp-rows", type=int, default=200_000, help="ddp: engagement rows to train on")
    ap.add_argument("--ddp-epochs", type=int, default=4, help="ddp: epochs per setup (no early stop)")
    ap.add_argument("--ddp-batches", default="1024,8192", help="ddp: global batch sizes to compare")
    ap.add_argument("--sizes", default="1Mx10M", help="offline: entity x feature rows, e.g. 1Mx10M,3Mx30M,10Mx100M")
    ap.add_argument("--engines", default="local,spark,pyspark", help="offline: engines to run")
    ap.add_argument("--spark-memory", default="6g", help="offline/score: spark.driver.memory of local[2]")
    ap.add_argument("--job-timeout", type=float, default=3600, help="offline/score: seconds before a job is stopped")
    ap.add_argument("--score-rows", type=int, default=2_000_000, help="score: rows to score")
    ap.add_argument("--work-dir", default=None, help="offline/score: data folder (reused when it holds the data)")
    ap.add_argument("--limit-mem", default="2g", help="limit: the memory cap of each job (cgroup), e.g. 2g")
    ap.add_argument("--limit-sizes", default="1Mx10M,5Mx50M", help="limit: entity x feature rows under the cap")
    ap.add_argument("--limit-spark-memory", default="1g", help="limit: spark.driver.memory (JVM heap) under the cap")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        ap.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    print(
        f"machine: {platform.node()} {os.cpu_count()} cpu, python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    last = 1.0
    for name in chosen:
        print(f"\n== {name}", flush=True)
        last = SECTIONS[name](args)
        print(f"{name} ratio: {last:.2f}", flush=True)
    print(f"ratio: {last:.2f}")


if __name__ == "__main__":
    main()
