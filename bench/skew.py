"""Skew benchmark: `roost.monitor.skew` over 1,000,000 logged requests vs the naive per-request recomputation.

Data: a feature view of 3 fields (int, float, string; TTL 7 days) over --users entities and --events source rows
spread over 30 days; request logs of --rows rows (10 Parquet files in the request-log contract: entity key, the
served values, `_fs_event_time.<view>`, `roost.feature_refs`/`roost.entities` metadata). The served values are the
true PIT values with 1% of the floats perturbed (so the stale/mismatch path runs too).

roost: `skew(logs)` — batched PIT recomputation (one `training_set` per batch of 250,000 rows), comparison,
categories, profiles; timed end to end (wall and CPU seconds, peak RSS).
naive: for a sample of --sample requests, one `training_set` call with a one-row entity frame per request (what a
per-request query loop does), extrapolated to --rows. Prints `ratio: naive / roost` last.

    .venv/bin/python bench/skew.py [--rows 1000000] [--sample 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, measure

DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("ev", path="data/ev.parquet", event_time="et")
uv = FeatureView("uv", user, src, ttl=timedelta(days=7), fields={"v_int": "int64", "v_f": "float64", "v_s": "string"})
"""
REFS = {"clicks": "uv:v_int", "score": "uv:v_f", "cat": "uv:v_s"}
T0 = np.datetime64("2024-03-01T00:00:00", "us")
DAY_US = 86_400 * 10**6


def build(root: Path, users: int, events: int, rows: int, seed: int = 0) -> Path:
    """A workspace with the view applied, and request logs of `rows` rows; returns the log folder."""
    from roost import workspace
    from roost.features import apply, training_set

    rng = np.random.default_rng(seed)
    ws = roost.init(root / "ws")
    workspace.use(ws)
    (ws.root / "data").mkdir()
    et = T0 + rng.integers(0, 30 * DAY_US, events).astype("timedelta64[us]")
    ev = pa.table(
        {
            "user_id": pa.array(rng.integers(0, users, events), pa.int64()),
            "et": pa.array(et, pa.timestamp("us", tz="UTC")),
            "v_int": pa.array(rng.integers(0, 100, events), pa.int64()),
            "v_f": pa.array(rng.normal(0, 1, events), pa.float64()),
            "v_s": pa.array(rng.choice(["a", "b", "c", "d"], events), pa.string()),
        }
    )
    pq.write_table(ev, ws.root / "data" / "ev.parquet")
    (ws.root / "features").mkdir()
    (ws.root / "features" / "defs.py").write_text(DEFS)
    apply()
    logs = root / "logs" / "m" / "2024-03-31"
    logs.mkdir(parents=True)
    per = rows // 10
    for i in range(10):
        ts = T0 + (20 * DAY_US + rng.integers(0, 10 * DAY_US, per)).astype("timedelta64[us]")
        ent = pa.table(
            {
                "user_id": pa.array(rng.integers(0, users, per), pa.int64()),
                "_ts": pa.array(np.sort(ts), pa.timestamp("us", tz="UTC")),
            }
        )
        got = training_set(ent, list(REFS.values()), event_time="_ts", output="arrow")
        score = np.asarray(got.column("v_f").to_numpy(zero_copy_only=False), np.float64)
        bad = rng.random(per) < 0.01
        score = np.where(bad, score + 1.0, score)
        n = per
        tbl = pa.table(
            {
                "_ts": ent.column("_ts"),
                "_request_id": pa.array([f"r{i}-{j}" for j in range(n)]),
                "_model": pa.array(["m"] * n),
                "_version": pa.array(rng.choice(["1", "2"], n)),
                "_row": pa.array(np.zeros(n, np.int64)),
                "user_id": ent.column("user_id"),
                "clicks": got.column("v_int").cast(pa.float32()),
                "score": pa.array(score, pa.float32()),
                "cat": got.column("v_s").fill_null(""),
                "_fs_event_time.uv": pa.compute.subtract(ent.column("_ts"), pa.scalar(60_000_000, pa.duration("us"))),
                "pred_probability": pa.array(np.full(n, 0.5, np.float32)),
            }
        ).replace_schema_metadata({"roost.feature_refs": json.dumps(REFS), "roost.entities": json.dumps(["user_id"])})
        pq.write_table(tbl, logs / f"000000-1-{i:05d}.parquet")
    return root / "logs"


def naive(logs: Path, sample: int) -> float:
    """Seconds per request of a per-request recomputation (one training_set call with one entity row)."""
    import pyarrow.dataset as ds

    from roost.features import training_set

    tbl = ds.dataset(str(logs), format="parquet").head(sample, columns=["user_id", "_ts"])
    t = time.perf_counter()
    for i in range(tbl.num_rows):
        training_set(tbl.slice(i, 1), list(REFS.values()), event_time="_ts", output="arrow")
    return (time.perf_counter() - t) / max(tbl.num_rows, 1)


def main() -> None:
    """Build the data, time roost's skew and the naive loop, print figures and `ratio:` last."""
    import pyarrow  # noqa: F401  (bound before the timed section)

    from roost.monitor.skew import skew

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--sample", type=int, default=200)
    a = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="roost-bench-skew-") as tmp:
        t = time.perf_counter()
        logs = build(Path(tmp), a.users, a.events, a.rows)
        print(f"data: {a.events:,} source rows, {a.rows:,} logged rows ({time.perf_counter() - t:.1f} s to build)")
        with measure() as m:
            rep = skew(logs)
        print(
            f"roost skew: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, {rep.rows_compared / m.wall:,.0f} rows/s; peak RSS "
            f"{m.peak:.0f} MB (before: {m.peak_start:.0f} MB)"
        )
        for f in rep.features:
            counts = dict(zip(("ok", "missing", "stale", "value", "extra"), f.counts))
            print(f"  {f.feature}: mismatch {f.mismatch_rate:.3%} {counts}")
        per = naive(logs, a.sample)
        est = per * rep.rows_compared
        print(
            f"naive per-request training_set: {per * 1000:.1f} ms/request on {a.sample} requests -> "
            f"{est:,.0f} s ({est / 3600:.1f} h) extrapolated to {rep.rows_compared:,}"
        )
        print(f"load average: {os.getloadavg()}")
        print(f"ratio: {est / m.wall:.0f}")


if __name__ == "__main__":
    main()
