"""`bench/ui.py --scale`: page server times of `roost ui` on a big store — 1M runs and 10M logged requests.

The store is a roost workspace (SQLite) filled in bulk, not timed: RUNS runs with 3 params, 1 tag and 2 latest
metrics each (raw sqlite3 executemany through roost's own schema); a model `churn` of 6 versions with aliases and
alias history; 3 serving fleets (1 live, 2 stopped); REQUESTS logged requests as pre-rolled minutes (two versions,
a 90/10 canary, over DAYS days: one serve_traffic row per version per minute, each with a latency and a prediction
histogram of that minute's requests, drawn as the aggregator draws them); 10,000 request-log offsets; 20 feature
views. Then `roost ui` runs as a subprocess and this process times pages by their Server-Timing header (the server's
own time, p50 / p99 of --repeats after 2 warm-ups). Also timed: the aggregator rolling up 1M request-log rows of
real Parquet (written by roost.serve.reqlog) — the incremental work a fleet does per heartbeat.

The filled workspace is cached under .bench-cache/ui-scale/, keyed by (runs, requests, days, the registry's schema
head, FILL_VERSION): a later run with the same parameters reuses it and only times pages (its traffic minutes are
shifted by whole hours so the newest one is the current minute again, and the live fleet heartbeats anew).
`--fresh` refills it; `--keep DIR` uses DIR instead of the cache.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_CACHE, machine
from _servers import free_port

T0 = datetime(2026, 11, 1, tzinfo=UTC)
FILL_VERSION = 1  # bump when what fill_* writes changes: older cached workspaces are then refilled
DONE = ".bench-filled"  # marker written once a workspace is completely filled
PAGES = [
    ("model page, traffic 1h", "/models/churn"),
    ("model page, traffic 24h", "/models/churn?window=24h"),
    ("model page, traffic 7d", "/models/churn?window=7d"),
    ("models list", "/models"),
    ("runs list, first page", "/runs"),
    ("runs list, filter + sort", "/runs?q=params.model+%3D+%27mlp%27&order=metrics.auc+DESC"),
    ("feature views page", "/features"),
]


def fill_runs(db: Path, n: int, seed: int = 5) -> float:
    """n runs in one experiment, straight into the SQLite file roost created; returns seconds."""
    t = time.perf_counter()
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("INSERT INTO experiments (name, created_at) VALUES ('bench', ?)", (T0.isoformat(" "),))
    eid = con.execute("SELECT id FROM experiments WHERE name='bench'").fetchone()[0]
    step = 100_000
    for lo in range(0, n, step):
        runs, params, tags, latest = [], [], [], []
        for i in range(lo, min(n, lo + step)):
            rid = uuid.UUID(int=rng.getrandbits(128)).hex
            start = (T0 + timedelta(seconds=3 * i)).strftime("%Y-%m-%d %H:%M:%S.000000")
            runs.append((rid, eid, f"run-{i}", "FINISHED", start, start, "bench", f"file:///bench/{rid}", "active"))
            model = rng.choice(("mlp", "lgbm", "linear"))
            lr = rng.choice((0.001, 0.01, 0.1))
            depth = rng.randint(2, 12)
            params += [
                (rid, "model", model, "str", None, start),
                (rid, "lr", repr(lr), "float", lr, start),
                (rid, "depth", str(depth), "int", float(depth), start),
            ]
            tags.append((rid, "team", rng.choice(("ads", "search", "growth"))))
            auc, loss = rng.uniform(0.5, 0.99), rng.uniform(0.1, 1.0)
            latest += [(rid, "auc", auc, 0, 0.0), (rid, "loss", loss, 0, 0.0)]
        con.executemany(
            "INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, user, artifact_uri, "
            "lifecycle_stage) VALUES (?,?,?,?,?,?,?,?,?)",
            runs,
        )
        con.executemany("INSERT INTO params (run_id, key, value, type, num, run_start) VALUES (?,?,?,?,?,?)", params)
        con.executemany("INSERT INTO tags (run_id, key, value) VALUES (?,?,?)", tags)
        con.executemany("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) VALUES (?,?,?,?,?)", latest)
        con.executemany("INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?,?,?,?,?)", latest)
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return time.perf_counter() - t


def fill_model_and_traffic(requests: int, days: int, seed: int = 7) -> tuple[float, int]:
    """Model churn (6 versions), fleets, pre-rolled traffic minutes and offsets; returns (seconds, rows)."""
    from roost.registry import fleets, modelreg, sketch
    from roost.registry.fleets import Rollup
    from roost.registry.store import default_store
    from roost.registry.tables import TrafficMinute

    t = time.perf_counter()
    st = default_store()
    rng = np.random.default_rng(seed)
    with st.read() as s:
        from sqlalchemy import text

        run_ids = [r[0] for r in s.execute(text("SELECT id FROM runs ORDER BY start_time DESC LIMIT 6"))]
    from roost import workspace

    pkg = workspace.current().root / "pkg"  # removed with the workspace
    pkg.mkdir(exist_ok=True)
    (pkg / "roost-model.yaml").write_text(
        "framework: onnx\ntask: binary\nmetrics:\n  test_roc_auc: 0.91\n  accuracy: 0.88\n  log_loss: 0.31\n"
        "  brier: 0.09\n  f1: 0.7\n  precision: 0.72\n  recall: 0.69\n"
    )
    for k in range(6):
        mv = modelreg.register(st, "churn", str(pkg), run_ids[k % len(run_ids)] if run_ids else None)
        modelreg.set_alias(st, "churn", mv.version, "prod" if k % 2 else "candidate")
    now_min = int(time.time() // 60)
    minutes = days * 24 * 60
    per_min = requests / minutes
    served = [
        {"model": "churn", "version": "6", "source": "churn@prod", "role": "primary", "share": 90.0},
        {"model": "churn", "version": "5", "source": "churn@candidate", "role": "canary", "share": 10.0},
    ]
    for f in range(3):
        fleets.register(st, f"fleet{f}", f"10.0.0.{f}", 8080, 100 + f, served, 10.0, 1.0)
        if f:
            fleets.stopped(st, f"fleet{f}")
    pool_lat = rng.lognormal(1.0, 0.6, 200_000)
    pool_pred = rng.beta(2, 5, 200_000)
    rolled: dict[tuple[str, int, int], Rollup] = {}  # (version, span, first minute) -> rollup, as record() sums them
    for m in range(now_min - minutes + 1, now_min + 1):
        for version, share in (("6", 0.9), ("5", 0.1)):
            n = max(1, int(rng.poisson(per_min * share)))
            lo = int(rng.integers(0, len(pool_lat) - n))
            lat = pool_lat[lo : lo + n]
            r = Rollup(
                requests=n,
                rows=n,
                errors=int(rng.poisson(n * 0.002)),
                latency_ms_sum=float(lat.sum()),
                latency=sketch.histogram(lat),
                predictions=sketch.histogram(pool_pred[lo : lo + n]),
                pred_name="probability",
            )
            for span in fleets.SPANS:
                rolled.setdefault((version, span, m // span * span), Rollup()).add(r)
    table = [
        {
            "model": "churn",
            "version": v,
            "span": span,
            "minute": m,
            "fleet_id": "fleet0",
            "requests": r.requests,
            "rows": r.rows,
            "errors": r.errors,
            "latency_ms_sum": r.latency_ms_sum,
            "latency": r.latency,
            "predictions": r.predictions,
            "pred_name": r.pred_name,
        }
        for (v, span, m), r in rolled.items()
    ]
    with st.write() as s:
        s.execute(TrafficMinute.__table__.insert(), table)
    rows = len(table)
    offsets = {f"/logs/churn/day/{i:06d}-1-00001.parquet": 1000 for i in range(10_000)}
    fleets.record(st, "fleet0", {}, offsets)
    for k in range(20):
        st.put_object(
            "feature_view",
            f"view_{k}",
            {
                "name": f"view_{k}",
                "entities": ["user_id"],
                "ttl": "1d",
                "fields": [{"name": f"f{j}", "dtype": "float"} for j in range(12)],
            },
        )
    return time.perf_counter() - t, rows


def rollup_throughput(rows: int = 1_000_000, per_request: int = 50) -> tuple[float, int]:
    """Seconds for roost.serve.traffic.catch_up to roll up `rows` request-log rows (real Parquet) into a store."""
    from roost.registry.store import open_store
    from roost.serve import traffic
    from roost.serve.reqlog import RequestLogger

    tmp = Path(tempfile.mkdtemp(prefix="roost-bench-rollup-"))
    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="probability")])
    model = SimpleNamespace(name="churn", version="1", package=pkg)
    rl = RequestLogger(tmp / "logs", rate=1.0, flush_s=3600, rotate_rows=100_000)
    rng = np.random.default_rng(1)
    for i in range(rows // per_request):
        x = rng.random(per_request).astype("float32")
        rl.maybe_log(model, "v2", {"x": x}, {"probability": x}, float(rng.lognormal(-6, 1)), f"r{i}")
        if i % 2000 == 1999:
            rl.flush()
    rl.close()
    try:
        store = open_store(f"sqlite:///{tmp / 'reg.db'}")
        files = traffic.log_files(tmp / "logs", ["churn"], None)
        t = time.perf_counter()
        got = traffic.catch_up(store, "f", files, most_rows=10**9)
        return time.perf_counter() - t, got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed_pages(base: str, repeats: int) -> list[tuple[str, float, float, int]]:
    """(label, p50 ms, p99 ms, bytes) of each page's Server-Timing."""
    out = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for label, path in PAGES:
            for _ in range(2):
                c.get(path)
            times = []
            for _ in range(repeats):
                r = c.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                times.append(float(r.headers["server-timing"].split("dur=")[1]))
            times.sort()
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            out.append((label, statistics.median(times), p99, len(r.content)))
    return out


def schema_head() -> str:
    """The registry's newest migration (a cached workspace of an older schema is refilled, not migrated)."""
    import roost.registry.migrations as mig

    versions = Path(mig.__file__).parent / "versions"
    return sorted(p.stem for p in versions.glob("[0-9]*.py"))[-1].split("_")[0]


def cache_dir(runs: int, requests: int, days: int) -> Path:
    """Where the workspace of these parameters is cached."""
    return BENCH_CACHE / "ui-scale" / f"runs{runs}-req{requests}-days{days}-schema{schema_head()}-fill{FILL_VERSION}"


def refresh(root: Path) -> int:
    """Make a cached workspace current: shift its traffic by whole hours so the newest minute is now (span rows stay
    aligned) and heartbeat its live fleet; returns the minutes shifted."""
    from roost import workspace

    con = sqlite3.connect(workspace.load(root).store_url.removeprefix("sqlite:///"))
    last = con.execute("SELECT max(minute) FROM serve_traffic WHERE span = 1").fetchone()[0] or 0
    shift = max(0, (int(time.time() // 60) - int(last)) // 60 * 60)
    if shift:  # via negatives: no intermediate primary-key collision
        con.execute("UPDATE serve_traffic SET minute = -(minute + ?)", (shift,))
        con.execute("UPDATE serve_traffic SET minute = -minute")
    beat = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    con.execute("UPDATE serve_fleets SET heartbeat_at = ? WHERE stopped_at IS NULL", (beat,))
    con.commit()
    con.close()
    return shift


def fill(root: Path, runs: int, requests: int, days: int) -> None:
    """A new workspace at root with the big store."""
    from roost import workspace

    ws = roost.init(root)
    workspace.use(ws)
    db = Path(ws.store_url.removeprefix("sqlite:///"))
    took = fill_runs(db, runs)
    print(f"[setup: {runs:,} runs in {took:.0f} s]", flush=True)
    took, rows = fill_model_and_traffic(requests, days)
    print(f"[setup: {requests:,} requests over {days} days as {rows:,} rollup rows in {took:.0f} s]", flush=True)
    took, got = rollup_throughput()
    print(f"aggregator: {got:,} request-log rows rolled up in {took:.2f} s ({got / took:,.0f} rows/s)", flush=True)
    (root / DONE).write_text(f"{runs} {requests} {days} {schema_head()} {FILL_VERSION}\n")


def main(runs: int, requests: int, days: int, repeats: int, keep: str | None = None, fresh: bool = False) -> None:
    """Build (or reuse) the big store, start `roost ui` on it, print the page figures."""
    from roost import workspace
    from ui import start, stop  # bench/ui.py's server helpers

    print(f"machine: {machine()}")
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="roost-bench-uiscale-"):
        root = Path(keep) if keep else cache_dir(runs, requests, days)
        if fresh or not (root / DONE).exists():
            if root.exists():
                shutil.rmtree(root)
            root.parent.mkdir(parents=True, exist_ok=True)
            print(f"[setup: filling {root}]", flush=True)
            fill(root, runs, requests, days)
        else:
            workspace.use(root)
            print(f"[setup: reusing {root}; traffic shifted {refresh(root)} min to now]", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        port = free_port()
        proc = start(
            [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(port)],
            root,
            f"http://127.0.0.1:{port}/models",
            env=env,
        )
        try:
            print(f"load average before timing: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
            figs = timed_pages(f"http://127.0.0.1:{port}", repeats)
            print(f"load average after timing: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
        finally:
            stop(proc)
    print(f"| page ({runs:,} runs, {requests:,} logged requests) | server p50 | server p99 | target |")
    print("|---|---|---|---|")
    for label, p50, p99, size in figs:
        print(f"| {label} ({size / 1024:.0f} KB) | {p50:.0f} ms | {p99:.0f} ms | < 300 ms |")
    worst = max(p50 for _, p50, _, _ in figs)
    print(f"worst page p50: {worst:.0f} ms ({'within' if worst < 300 else 'OVER'} the 300 ms target)")
    print(f"bench wall time: {time.perf_counter() - t_all:.0f} s")


def run(argv: Any) -> None:
    """Entry from bench/ui.py --scale."""
    main(argv.runs, argv.requests, argv.days, argv.repeats, argv.keep, argv.fresh)
