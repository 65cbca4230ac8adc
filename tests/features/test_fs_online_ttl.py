"""A view's ttl applies at read time online as it does offline: a stored value older than ttl at the moment of the
read is no value (the feature server's status OUTSIDE_MAX_AGE), in `online()`, the feature server and the fetcher
`roost serve` uses; equal to a brute-force point-in-time lookup at that moment, to the microsecond."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, all_rows, brute_latest, brute_pit, rows

TTL = timedelta(hours=3)  # clicks_ttl's, in DEFS
USERS = [*range(12), 99]


@pytest.fixture(scope="module")
def pushed(module_ws):
    """A workspace whose views got pushes (event times T0 .. T0 + 10 h); (held rows, a user's latest row)."""
    from roost import workspace
    from roost.features import apply, push

    workspace.use(module_ws)
    rng = np.random.default_rng(5)
    rows(rng, 10).to_parquet(module_ws.root / "data" / "events.parquet")
    write_defs(module_ws.root, DEFS)
    apply()
    pushes = [rows(rng, 40, hours=10) for _ in range(3)]
    for p in pushes:
        for view in ("clicks", "clicks_ttl"):
            push(view, p)
    workspace.use(None)
    return all_rows(rows(rng, 0), pushes)


def _nows(held):
    """Read moments: after every row; exactly at a user's latest row + ttl (still valid) and 1 µs after."""
    edge = brute_latest(held, 3)["event_time"] + TTL
    return [T0 + timedelta(hours=10), edge, edge + timedelta(microseconds=1), T0 + timedelta(hours=14)]


def _us(t):
    return (t - T0) // timedelta(microseconds=1) + int(T0.timestamp()) * 1_000_000


def _expected(held, now, ttl):
    return {f: [None if (r := brute_pit(held, u, now, ttl)) is None else r[f] for u in USERS] for f in FIELDS}


@pytest.mark.parametrize("i", range(4))
def test_online_applies_the_ttl_at_read_time(pushed, use_module_ws, monkeypatch, i):
    from roost.features import online, serving

    now = _nows(pushed)[i]
    monkeypatch.setattr(serving, "now_us", lambda: _us(now))
    for view, ttl in (("clicks_ttl", TTL), ("clicks", None)):
        got = online([f"{view}:{f}" for f in FIELDS], {"user_id": USERS}, output="arrow")
        exp = _expected(pushed, now, ttl)
        for f in FIELDS:
            assert got.column(f).to_pylist() == exp[f], (view, f, now)
    if i == 2:  # the test is not vacuous: 1 µs past its ttl user 3's value is gone, others' are not
        exp = _expected(pushed, now, TTL)["label"]
        assert exp[3] is None and _expected(pushed, now - timedelta(microseconds=1), TTL)["label"][3] is not None
        assert any(v is not None for v in exp)


@pytest.mark.parametrize("i", [1, 2, 3])
def test_serving_fetcher_applies_the_ttl(pushed, use_module_ws, monkeypatch, i):
    """`roost serve`'s StoreFetcher (numpy arrays, with and without the request log's times)."""
    from roost.features import serving
    from roost.serve.features import StoreFetcher

    now = _nows(pushed)[i]
    monkeypatch.setattr(serving, "now_us", lambda: _us(now))
    exp = _expected(pushed, now, TTL)
    for with_times in (False, True):
        got = StoreFetcher(with_times=with_times).fetch(
            [f"clicks_ttl:{f}" for f in FIELDS], {"user_id": np.array(USERS)}
        )
        assert [None if np.isnan(x) else int(x) for x in got["clicks"]] == exp["clicks"]
        assert [None if x is None else x for x in got["label"]] == exp["label"]
        if with_times:  # the log keeps the stored row's time (NaT: no row)
            t = got["_fs_event_time.clicks_ttl"]
            lat = [brute_latest(pushed, u) for u in USERS]
            assert [None if np.isnat(x) else x for x in t] == [
                None if r is None else np.datetime64(r["event_time"].replace(tzinfo=None), "us") for r in lat
            ]


@pytest.mark.parametrize("i", [1, 2, 3])
def test_feature_server_says_outside_max_age(pushed, use_module_ws, monkeypatch, i):
    from starlette.testclient import TestClient

    from roost.features import serving
    from roost.features.feature_server import create_app

    now = _nows(pushed)[i]
    monkeypatch.setattr(serving, "now_us", lambda: _us(now))
    exp = _expected(pushed, now, TTL)
    app = create_app(allowed_hosts=None)
    with TestClient(app, base_url="http://localhost") as client:
        body = {"features": [f"clicks_ttl:{f}" for f in FIELDS], "entities": {"user_id": USERS}}
        res = client.post("/get-online-features", json=body).json()
    lat = [brute_latest(pushed, u) for u in USERS]
    for f, got in zip(FIELDS, res["results"][1:]):
        assert got["values"] == exp[f], f
        status = [
            "NOT_FOUND" if r is None else "OUTSIDE_MAX_AGE" if r["event_time"] < now - TTL else "PRESENT" for r in lat
        ]
        assert got["statuses"] == status, f


def test_as_of_env_sets_the_read_moment(pushed, use_module_ws, monkeypatch):
    """ROOST_ONLINE_AS_OF (replays, demos on historical data) moves the read's moment, to the microsecond."""
    from roost.errors import RoostError
    from roost.features import online

    edge = _nows(pushed)[1]
    for now in (edge, edge + timedelta(microseconds=1)):
        monkeypatch.setenv("ROOST_ONLINE_AS_OF", now.isoformat())
        got = online(["clicks_ttl:label"], {"user_id": USERS}, output="arrow").column("label").to_pylist()
        assert got == _expected(pushed, now, TTL)["label"]
    monkeypatch.setenv("ROOST_ONLINE_AS_OF", "2024-05-01 12:00")
    with pytest.raises(RoostError, match="no offset"):
        online(["clicks_ttl:label"], {"user_id": USERS})
