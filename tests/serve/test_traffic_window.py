"""The model page's traffic (roost.ui.served.traffic: one query, dense histograms) against brute force over the raw
request logs of two fleets, hourly and per-minute rows, and error rates under sampled logging (--log-requests < 1)."""

from __future__ import annotations

import math
import random
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
from roost.ui import served

T0 = 1_800_000_000.0 // 3600 * 3600  # an hour boundary


def _model(version: str) -> Any:
    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="probability")])
    return SimpleNamespace(name="churn", version=version, package=pkg)


def _serve(directory: Path, n: int, seed: int, rate: float, minutes: int) -> list[dict]:
    """n requests over `minutes`, two versions, through the real logger at sampling `rate`; every request sent."""
    rng = np.random.default_rng(seed)
    rl = RequestLogger(directory, rate=rate, flush_s=3600, rotate_rows=500)
    sent = []
    try:
        for i in range(n):
            version = "2" if rng.random() < 0.25 else "1"
            ts = T0 + i * minutes * 60.0 / n
            lat = float(rng.lognormal(-5, 1.0))
            x = rng.random(1 + i % 3).astype("float32")
            before = len(rl._buf)
            rl.maybe_log(_model(version), "v2", {"x": x}, {"probability": x}, lat, request_id=f"s{seed}-{i}")
            if len(rl._buf) > before:
                rl._buf[-1] = rl._buf[-1]._replace(ts=ts)
            sent.append({"version": version, "minute": int(ts // 60)})
            if i % 150 == 0:
                rl.flush()
    finally:
        rl.close()
    return sent


def _fleet(store, logs: Path, fleet_id: str, n: int, seed: int, rate: float, minutes: int, errors: dict) -> list:
    sent = _serve(logs / fleet_id, n, seed, rate, minutes)
    traffic.catch_up(store, fleet_id, traffic.log_files(logs / fleet_id, ["churn"], None, now=T0))
    fleets.record(store, fleet_id, {("churn", v, m): fleets.Rollup(errors=k) for (v, m), k in errors.items()}, {})
    return sent


def _logs(logs: Path) -> pd.DataFrame:
    frames = []
    for p in sorted(logs.rglob("*.parquet")):
        if not p.name.startswith("."):
            frames.append(pd.read_parquet(p).assign(fleet=p.relative_to(logs).parts[0]))
    df = pd.concat(frames, ignore_index=True)
    return df.assign(minute=df["_ts"].astype("int64") // 60_000_000)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A registry on SQLite, and on a real PostgreSQL (the histograms are read as JSON text on both)."""
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    return open_store(request.getfixturevalue("pg_database")())


def test_page_traffic_equals_brute_force_over_two_fleets(store: Any, tmp_path: Path) -> None:
    m0 = int(T0 // 60)
    _fleet(store, tmp_path / "logs", "a", 700, 1, 1.0, 50, {("1", m0 + 3): 2})
    _fleet(store, tmp_path / "logs", "b", 500, 2, 1.0, 50, {("2", m0 + 7): 1, ("1", m0 + 3): 1})
    df = _logs(tmp_path / "logs")
    page = served.traffic("churn", "1h", store=store, now=T0 + 55 * 60)
    per_req = df.drop_duplicates("_request_id")
    errors = {"1": 3, "2": 1}
    assert [v["version"] for v in page["versions"]] == ["1", "2"]
    for v in page["versions"]:
        mine = per_req[per_req["_version"] == v["version"]]
        assert v["requests"] == len(mine) and v["est_requests"] == len(mine)
        assert v["rows"] == int((df["_version"] == v["version"]).sum())
        assert v["errors"] == errors[v["version"]]
        assert v["error_rate"] == errors[v["version"]] / (len(mine) + errors[v["version"]])
        lat = np.sort(mine["_latency_ms"].to_numpy(np.float64))
        for q, got in ((0.5, v["p50"]), (0.99, v["p99"])):
            lo, hi = sketch.bounds(sketch.quantile_key(sketch.histogram(lat), q))
            assert lo <= lat[math.ceil(q * len(lat)) - 1] < hi and lo <= got <= hi
    # every chart point: the brute-force count, and the quantile of that minute's merged (two-fleet) histogram
    charts = {c["key"]: c for c in page["charts"]}
    start = page["start_ms"] // 60_000
    for s in charts["requests / min"]["series"]:
        version = s["label"].split()[0][1:]
        mine = per_req[per_req["_version"] == version]
        for x_ms, got in zip(s["steps"], s["values"]):
            minute = x_ms // 60_000
            at = mine[mine["minute"] == minute]
            assert got == (len(at) if minute <= df["minute"].max() else None), (version, minute - start)
    p99 = {
        s["label"].split()[0][1:]: s for s in charts["latency p50 / p99 (ms)"]["series"] if s["label"].endswith("p99")
    }
    for version, s in p99.items():
        mine = per_req[per_req["_version"] == version]
        for x_ms, got in zip(s["steps"], s["values"]):
            lat = mine[mine["minute"] == x_ms // 60_000]["_latency_ms"].to_numpy(np.float64)
            want = sketch.quantiles(sketch.histogram(lat), (0.99,))[0] if len(lat) else None
            assert got == want


def test_hourly_rows_equal_brute_force_and_minute_rows_summed(tmp_path: Path) -> None:
    """The 7d window reads the 60-minute rows: each equals a brute force over its hour of raw logs."""
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    _fleet(store, tmp_path / "logs", "a", 900, 3, 1.0, 150, {})
    df = _logs(tmp_path / "logs")
    page = served.traffic("churn", "7d", store=store, now=T0 + 151 * 60)
    per_req = df.drop_duplicates("_request_id").assign(hour=lambda d: d["minute"] // 60 * 60)
    w = fleets.window(store, "churn", 0, 10**9, span=60)
    got = {(v, int(m)): i for i, (v, m) in enumerate(zip(w.versions, w.minutes))}
    want = per_req.groupby(["_version", "hour"])
    assert set(got) == {(str(v), int(h)) for v, h in want.groups}
    for (version, hour), g in want:
        i = got[(str(version), int(hour))]
        assert w.requests[i] == len(g)
        lat = g["_latency_ms"].to_numpy(np.float64)
        dense = np.zeros(w.latency.shape[1], dtype=np.int64)
        for k, n in sketch.histogram(lat).items():
            dense[int(k) - w.latency_first] += n
        assert (w.latency[i] == dense).all()
    assert sum(v["requests"] for v in page["versions"]) == len(per_req)


def test_error_rate_is_unbiased_under_sampled_logging(tmp_path: Path) -> None:
    """Fleet a logs 20 % of its successes, fleet b all of them; every error answer is counted. The page's error
    rate estimates errors / answered (the logged successes weighted by 1 / rate), not errors / logged."""
    random.seed(11)  # the logger samples with Python's random
    store = open_store(f"sqlite:///{tmp_path / 'reg.db'}")
    m0 = int(T0 // 60)
    sent_a = _fleet(store, tmp_path / "logs", "a", 3000, 5, 0.2, 30, {("1", m0 + 1): 60})
    sent_b = _fleet(store, tmp_path / "logs", "b", 400, 6, 1.0, 30, {("1", m0 + 2): 8})
    df = _logs(tmp_path / "logs")
    logged = df.drop_duplicates("_request_id")
    page = served.traffic("churn", "1h", store=store, now=T0 + 40 * 60)
    v1 = next(v for v in page["versions"] if v["version"] == "1")
    la = int(((logged["fleet"] == "a") & (logged["_version"] == "1")).sum())
    lb = int(((logged["fleet"] == "b") & (logged["_version"] == "1")).sum())
    assert v1["requests"] == la + lb  # logged
    assert math.isclose(v1["est_requests"], la / 0.2 + lb)  # each logged request of a stands for 5
    assert math.isclose(v1["error_rate"], 68 / (la / 0.2 + lb + 68))
    truth = 68 / (sum(s["version"] == "1" for s in sent_a + sent_b) + 68)  # what was really answered
    naive = 68 / (la + lb + 68)  # the old formula: errors against logged successes
    assert abs(v1["error_rate"] - truth) < 0.25 * truth < abs(naive - truth)


def test_concurrent_catch_ups_count_each_row_once(store: Any, tmp_path: Path) -> None:
    """Four catch-ups of one folder at once (fleets sharing it, the verb beside them): every row counted once."""
    import threading

    _serve(tmp_path / "logs", 600, 9, 1.0, 20)
    files = traffic.log_files(tmp_path / "logs", ["churn"], None, now=T0)
    assert len(files) > 3
    barrier = threading.Barrier(4)

    def one(i: int) -> None:
        barrier.wait()
        traffic.catch_up_dir(store, f"t{i}", tmp_path / "logs", ["churn"], now=T0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sum(r["rollup"].requests for r in fleets.traffic(store, "churn", 0))
    assert got == _logs(tmp_path / "logs")["_request_id"].nunique() == 600
