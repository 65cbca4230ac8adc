"""A fleet SIGKILLed after N requests leaves request-log files its last heartbeat never rolled up: the catch-up (the
next fleet's first beat, or `roost monitor rollup`) makes the rollups equal a brute force over the logs, once."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # servekit: packages and the server harness

from servekit import Server, breast_cancer, logreg_package

from roost.registry import fleets, sketch

N = 31
SLOW_BEAT = {"ROOST_FLEET_HEARTBEAT_S": "3600", "ROOST_REQUEST_LOG_ROTATE_S": "0.3"}  # one beat (at start) only


def _logged(logs: Path) -> pd.DataFrame:
    files = sorted(p for p in logs.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        return pd.DataFrame({"_request_id": []})
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


def _rollups(store) -> dict:
    """Every (version, minute) the registry holds for `bc`, summed over fleets, as comparable plain values."""
    return {
        (r["version"], r["minute"]): (
            r["rollup"].requests,
            r["rollup"].rows,
            r["rollup"].estimated,
            dict(sorted(r["rollup"].latency.items())),
            dict(sorted(r["rollup"].predictions.items())),
        )
        for r in fleets.traffic(store, "bc", 0)
    }


def _brute(df: pd.DataFrame) -> dict:
    df = df.assign(minute=df["_ts"].astype("int64") // 60_000_000)
    out = {}
    for (version, minute), g in df.groupby(["_version", "minute"]):
        per_request = g.drop_duplicates("_request_id")
        lat = per_request["_latency_ms"].to_numpy(np.float64)
        out[(str(version), int(minute))] = (
            len(per_request),
            len(g),
            float(len(per_request)),  # logged at rate 1: each logged request stands for itself
            dict(sorted(sketch.histogram(lat).items())),
            dict(sorted(sketch.histogram(g["pred_probability"].to_numpy(np.float64)).items())),
        )
    return out


@pytest.fixture
def killed_fleet(ws, tmp_path: Path) -> dict:
    """A real `roost serve bc@prod --log-requests 1` SIGKILLed after N requests, its logs on disk, none rolled up."""
    import roost
    from roost.registry import modelreg
    from roost.registry.store import default_store

    v = roost.register_model(None, "bc", str(logreg_package(tmp_path / "bc")))
    modelreg.set_alias(default_store(), "bc", v.version, "prod")
    X, _, cols = breast_cancer()
    logs = tmp_path / "reqlogs"
    srv = Server(
        ["bc@prod"], "--log-requests", "1", "--log-dir", str(logs), cwd=ws.root, log=tmp_path / "s.log", env=SLOW_BEAT
    ).wait_ready()
    try:
        with srv.client() as c:
            for i in range(N):
                body = {"instances": [dict(zip(cols, map(float, X[j]))) for j in range(i, i + 1 + i % 3)]}
                assert c.post("/v1/models/bc:predict", json=body).status_code == 200
        deadline = time.monotonic() + 60
        while _logged(logs)["_request_id"].nunique() < N:  # the workers finish their files (rotation 0.3 s)
            assert time.monotonic() < deadline, "the request logs never held every request"
            time.sleep(0.2)
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
    finally:
        srv.stop()
    store = default_store()
    assert sum(r[0] for r in _rollups(store).values()) == 0  # the killed fleet's one beat came before any request
    assert [f["state"] for f in fleets.fleets_of(store, "bc")] == ["live"]  # (gone once 3 beats are missed)
    return {"logs": logs, "store": store, "df": _logged(logs)}


def test_next_fleet_start_rolls_up_what_a_killed_fleet_left(killed_fleet) -> None:
    from roost.serve.registration import FleetRegistration

    store, logs = killed_fleet["store"], killed_fleet["logs"]
    served = [{"model": "bc", "version": "1", "source": "bc@prod", "role": "primary", "share": 100.0}]
    # the restarted fleet: new worker pids (none of the dead fleet's files are its own), same log folder
    nxt = FleetRegistration(lambda: served, "127.0.0.1", 1, log_dir=logs, log_rate=1.0, pids=set, store=store)
    nxt.beat()
    want = _brute(killed_fleet["df"])
    assert _rollups(store) == want
    assert sum(r[0] for r in want.values()) == N
    nxt.beat()  # its later beats (and a second start) count nothing again
    FleetRegistration(lambda: served, "127.0.0.1", 1, log_dir=logs, log_rate=1.0, pids=set, store=store).beat()
    assert _rollups(store) == want


def test_monitor_rollup_verb_is_exact_and_idempotent(killed_fleet, cli) -> None:
    store, logs = killed_fleet["store"], killed_fleet["logs"]
    code, out, err = cli("monitor", "rollup", str(logs), "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == len(killed_fleet["df"])
    want = _brute(killed_fleet["df"])
    assert _rollups(store) == want
    code, out, err = cli("monitor", "rollup", str(logs), "--json")
    assert code == 0 and json.loads(out)["rows"] == 0
    assert _rollups(store) == want


def test_monitor_rollup_refuses_a_missing_folder(ws, cli, tmp_path: Path) -> None:
    code, _, err = cli("monitor", "rollup", str(tmp_path / "nope"))
    assert code == 2 and "no request-log folder" in err


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_rollup_read_from_a_moved_offset_is_refused(backend: str, tmp_path: Path, request) -> None:
    """Two catch-ups of one folder (a fleet and `roost monitor rollup`): the one whose offsets moved meanwhile writes
    nothing, so no row is counted twice."""
    from roost.registry.store import open_store

    url = f"sqlite:///{tmp_path / 'reg.db'}" if backend == "sqlite" else request.getfixturevalue("pg_database")()
    store = open_store(url)
    one = {("bc", "1", 100): fleets.Rollup(requests=4, rows=4)}
    fleets.record(store, "a", one, {"/logs/f.parquet": 4}, expected={"/logs/f.parquet": 0})
    with pytest.raises(fleets.OffsetMoved):
        fleets.record(store, "b", one, {"/logs/f.parquet": 4}, expected={"/logs/f.parquet": 0})
    assert [r["rollup"].requests for r in fleets.traffic(store, "bc", 0)] == [4]
    assert fleets.offsets(store, ["/logs/f.parquet"]) == {"/logs/f.parquet": 4}
