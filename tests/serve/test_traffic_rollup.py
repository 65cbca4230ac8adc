"""The traffic rollup (roost.serve.traffic) against brute force over the raw request logs, and its offsets."""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roost.registry import fleets, sketch
from roost.registry.store import open_store
from roost.serve import traffic
from roost.serve.reqlog import RequestLogger


def _model(name: str, version: str) -> Any:
    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="probability")])
    return SimpleNamespace(name=name, version=version, package=pkg)


def _write_logs(directory: Path, n: int, seed: int, t0: float) -> None:
    """n requests of 1-4 rows over ~5 minutes, two versions, log-normal latencies, through the real logger."""
    rng = np.random.default_rng(seed)
    rl = RequestLogger(directory, rate=1.0, flush_s=3600, rotate_rows=700)
    models = [_model("churn", "1"), _model("churn", "2")]
    try:
        for i in range(n):
            rows = int(rng.integers(1, 5))
            rec_model = models[int(rng.random() < 0.3)]
            inputs = {"x": rng.random(rows).astype("float32")}
            outputs = {"probability": rng.random(rows).astype("float32")}
            rl.maybe_log(rec_model, "v2", inputs, outputs, float(rng.lognormal(-6, 1.2)), request_id=f"r{seed}-{i}")
            rl._buf[-1] = rl._buf[-1]._replace(ts=t0 + i * 300.0 / n)  # spread over 5 minutes of request time
            if i % 97 == 0:
                rl.flush()  # several files, rotated by row count
    finally:
        rl.close()


def _brute(directory: Path) -> pd.DataFrame:
    files = sorted(p for p in directory.rglob("*.parquet") if not p.name.startswith("."))
    df = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    df["minute"] = df["_ts"].astype("int64") // 60_000_000
    return df


def test_rollup_matches_brute_force_and_never_counts_twice(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    logs = tmp_path / "logs"
    t0 = 1_800_000_000.0
    _write_logs(logs, 900, seed=1, t0=t0)
    files = traffic.log_files(logs, ["churn"], None, now=t0 + 300)
    assert len(files) > 3
    assert traffic.catch_up(store, "f1", files) > 0
    assert traffic.catch_up(store, "f1", files) == 0  # offsets remembered: nothing read twice
    got = {(r["version"], r["minute"]): r["rollup"] for r in fleets.traffic(store, "churn", 0)}
    df = _brute(logs)
    want = df.groupby(["_version", "minute"])
    assert set(got) == {(str(v), int(m)) for v, m in want.groups}
    for (version, minute), g in want:
        r = got[(str(version), int(minute))]
        per_request = g.drop_duplicates("_request_id")
        assert r.requests == len(per_request)
        assert r.rows == len(g)
        lat = np.sort(per_request["_latency_ms"].to_numpy(np.float64))
        for q in (0.5, 0.99):
            exact = lat[math.ceil(q * len(lat)) - 1]
            lo, hi = sketch.bounds(sketch.quantile_key(r.latency, q))
            assert lo <= exact < hi, (q, exact, lo, hi)
        assert sum(r.predictions.values()) == len(g)
    # p99 over the whole window (merged minutes) is exact to the bucket too
    all_lat = np.sort(df.drop_duplicates("_request_id")["_latency_ms"].to_numpy(np.float64))
    merged = sketch.merged(r.latency for r in got.values())
    lo, hi = sketch.bounds(sketch.quantile_key(merged, 0.99))
    assert lo <= all_lat[math.ceil(0.99 * len(all_lat)) - 1] < hi


def test_new_files_are_added_incrementally(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    logs = tmp_path / "logs"
    t0 = 1_800_000_000.0
    _write_logs(logs, 200, seed=2, t0=t0)
    traffic.catch_up(store, "f1", traffic.log_files(logs, ["churn"], None, now=t0))
    time.sleep(
        1.1
    )  # file names carry the wall-clock second and a per-logger sequence: a second logger must not reuse one
    _write_logs(logs, 300, seed=3, t0=t0 + 60)
    traffic.catch_up(store, "f1", traffic.log_files(logs, ["churn"], None, now=t0))
    total = sum(r["rollup"].requests for r in fleets.traffic(store, "churn", 0))
    assert total == 500 == _brute(logs)["_request_id"].nunique()


def test_fleet_states(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    m = [{"model": "churn", "version": "3", "source": "churn@prod", "role": "primary", "share": 100.0}]
    fleets.register(store, "a", "127.0.0.1", 8080, 1, m, 10.0, 1.0)
    assert [f["state"] for f in fleets.fleets_of(store, "churn")] == ["live"]
    row = fleets.fleets_of(store, "churn")[0]
    assert fleets.state(row, row["heartbeat_at"] + pd.Timedelta(seconds=29)) == "live"
    assert fleets.state(row, row["heartbeat_at"] + pd.Timedelta(seconds=31)) == "gone"
    fleets.stopped(store, "a")
    assert [f["state"] for f in fleets.fleets_of(store, "churn")] == ["stopped"]
    assert fleets.fleets_of(store, "other") == []


def test_registration_survives_an_unreachable_registry(caplog: pytest.LogCaptureFixture) -> None:
    from roost.serve.registration import FleetRegistration

    class Broken:
        def write(self) -> Any:
            raise ConnectionError("registry down")

        read = write

    reg = FleetRegistration(list, "127.0.0.1", 1, interval=0.05, store=Broken()).start()
    try:
        time.sleep(0.3)
    finally:
        reg.stop()
    assert any("registry down" in r.getMessage() for r in caplog.records)


def test_sketch_quantiles_hold_the_exact_value() -> None:
    rng = np.random.default_rng(4)
    for values in (
        rng.lognormal(0, 2, 5000),
        rng.beta(2, 5, 3000),
        np.r_[-rng.random(300), np.zeros(7), rng.random(50)],
    ):
        h = sketch.histogram(values)
        ordered = np.sort(values)
        got = sketch.quantiles(h, (0.1, 0.5, 0.9, 0.99))
        for q, value in zip((0.1, 0.5, 0.9, 0.99), got):
            exact = ordered[math.ceil(q * len(values)) - 1]
            lo, hi = sketch.bounds(sketch.quantile_key(h, q))
            assert lo <= exact <= hi and lo <= value <= hi, (q, exact, value, lo, hi)


def test_prune_keeps_what_the_windows_read(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    now = 30_000_000
    old, recent = now - 9 * 24 * 60, now - 60
    fleets.record(
        store, "f", {("m", "1", old): fleets.Rollup(requests=2), ("m", "1", recent): fleets.Rollup(requests=3)}, {}
    )
    fleets.prune(store, now)
    assert [r["minute"] for r in fleets.traffic(store, "m", 0)] == [recent]  # the 9-day-old minute is gone
    assert sum(r["rollup"].requests for r in fleets.traffic(store, "m", 0, span=60)) == 5  # hourly rows stay


def test_two_loggers_in_one_process_never_overwrite_each_others_files(tmp_path: Path) -> None:
    """File names are HHMMSS-pid-seq: with the sequence counted per logger, two loggers of one process writing the
    same model within one second wrote the same file name and the second replaced the first."""
    loggers = [RequestLogger(tmp_path, rate=1.0, flush_s=3600) for _ in range(2)]
    try:
        for k, rl in enumerate(loggers):
            x = np.arange(3, dtype="float32") + 10 * k
            rl.maybe_log(_model("churn", "1"), "v2", {"x": x}, {"probability": x / 100}, 0.001, request_id=f"r{k}")
            rl.flush()
    finally:
        for rl in loggers:
            rl.close()
    df = _brute(tmp_path)
    assert sorted(df["_request_id"].unique()) == ["r0", "r1"] and len(df) == 6
