"""Push modes, Feast's PushMode: `to="online"`, `"offline"` or `"online_and_offline"` (the default) write exactly
where asked — online == the brute-force latest row of the pushes sent online, `training_set` == a brute-force PIT
join over the source rows and the pushes sent offline — in the Python API, the CLI and the feature server; a bad
`to` is an error naming the field, and nothing is written. `online(..., as_of=)` applies ttls as of that time."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import numpy as np
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, all_rows, brute_latest, brute_pit, fresh_redis, rows

from roost.errors import RoostError

USERS = list(range(13))


def _setup(ws, seed):
    from roost.features import apply

    rng = np.random.default_rng(seed)
    batch = rows(rng, 60)
    batch.to_parquet(ws.root / "data" / "events.parquet")
    write_defs(ws.root, DEFS)
    apply()
    return rng, batch


def _online(url=None, view="clicks"):
    from roost.features import online

    got = online([f"{view}:{f}" for f in FIELDS], {"user_id": USERS}, online_store=url, output="arrow")
    return {f: got.column(f).to_pylist() for f in FIELDS}


def _latest(held):
    return {f: [None if (r := brute_latest(held, u)) is None else r[f] for u in USERS] for f in FIELDS}


def _offline_ok(held, rng):
    """training_set over 'clicks' equals the brute-force PIT join over `held`."""
    import pandas as pd

    from roost.features import training_set

    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(-60, 32 * 60, 300)]
    ent = pd.DataFrame(
        {"user_id": rng.integers(0, 13, 300).astype("int64"), "event_time": pd.to_datetime(times, utc=True)}
    )
    got = training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow")
    for f in FIELDS:
        exp = [
            None if (r := brute_pit(held, int(u), t.to_pydatetime(), None)) is None else r[f]
            for u, t in zip(ent["user_id"], ent["event_time"])
        ]
        assert got.column(f).to_pylist() == exp, f


def _log_files(ws):
    from roost.features.push_log import log_files

    return log_files(ws.root, "clicks")


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_modes_write_exactly_where_asked(fws, request, store):
    from roost.features import Pusher, push

    url = fresh_redis(request.getfixturevalue("redis_url")) if store == "redis" else None
    rng, batch = _setup(fws, 21)
    a, b, c, d = (rows(rng, 30) for _ in range(4))

    assert push("clicks", a, to="online", online_store=url) == len(a)
    assert _online(url) == _latest(all_rows(batch.head(0), [a]))
    assert _log_files(fws) == []  # nothing reached the offline log
    _offline_ok(all_rows(batch, []), rng)

    assert push("clicks", b, to="offline", online_store=url) == len(b)
    assert _online(url) == _latest(all_rows(batch.head(0), [a]))  # online untouched
    _offline_ok(all_rows(batch, [b]), rng)

    p = Pusher("clicks", online_store=url)
    assert p.push(c) == len(c)  # the default: both
    assert p.push(d, to="ONLINE_AND_OFFLINE") == len(d)  # Feast's enum names are accepted too
    assert _online(url) == _latest(all_rows(batch.head(0), [a, c, d]))
    _offline_ok(all_rows(batch, [b, c, d]), rng)


def test_offline_only_push_creates_no_online_view(fws):
    """A view only ever pushed offline is not in the online store (its reads say so, as before any write)."""
    from roost.features import push
    from roost.features.online_stores import open_online_store

    rng, _ = _setup(fws, 22)
    push("clicks", rows(rng, 10), to="offline")
    assert not open_online_store().has_view("clicks")
    assert len(_log_files(fws)) >= 1


@pytest.mark.parametrize("bad", ["onilne", "both", "", None, 3])
def test_bad_to_is_a_clear_error_and_writes_nothing(fws, bad):
    from roost.features import Pusher, push

    rng, _ = _setup(fws, 23)
    for fn in (lambda r: push("clicks", r, to=bad), lambda r: Pusher("clicks").push(r, to=bad)):
        with pytest.raises(RoostError) as exc:
            fn(rows(rng, 5))
        assert "'to'" in exc.value.message and "online_and_offline" in (exc.value.hint or "")
    assert _log_files(fws) == []
    from roost.features.online_stores import open_online_store

    assert not open_online_store().has_view("clicks")


def test_cli_push_to(fws, cli):
    rng, batch = _setup(fws, 24)
    p = rows(rng, 20, ct_none=1.0).drop(columns=["created_time"])
    path = fws.root / "rows.parquet"
    p.to_parquet(path)
    code, out, err = cli("features", "push", "clicks", str(path), "--to", "online")
    assert code == 0, err
    assert _online() == _latest(all_rows(batch.head(0), [p])) and _log_files(fws) == []
    code, _, err = cli("features", "push", "clicks", str(path), "--to", "nowhere")
    assert code == 2 and "to" in err and "nowhere" in err
    code, _, err = cli("features", "push", "clicks", str(path), "--to", "offline")
    assert code == 0, err
    _offline_ok(all_rows(batch, [p]), rng)


def test_feature_server_push_to(fws):
    from starlette.testclient import TestClient

    from roost.features.feature_server import create_app

    rng, batch = _setup(fws, 25)
    a, b = rows(rng, 15, ct_none=1.0).drop(columns=["created_time"]), rows(rng, 15, ct_none=1.0)
    b = b.drop(columns=["created_time"])

    def body(df, **kw):
        cols = {c: df[c].tolist() for c in df.columns}
        cols["event_time"] = [t.isoformat() for t in df["event_time"]]
        return {"push_source_name": "clicks", "df": cols, **kw}

    with TestClient(create_app(allowed_hosts=None), base_url="http://localhost") as client:
        res = client.post("/push", json=body(a, to="online"))
        assert res.status_code == 200, res.text
        assert _online() == _latest(all_rows(batch.head(0), [a])) and _log_files(fws) == []
        res = client.post("/push", json=body(b, to="offline"))
        assert res.status_code == 200, res.text
        assert _online() == _latest(all_rows(batch.head(0), [a]))
        _offline_ok(all_rows(batch, [b]), rng)
        res = client.post("/push", json=body(b, to="sideways"))
        assert res.status_code == 422 and "'to'" in res.json()["error"], res.text


def test_online_as_of_argument(fws, monkeypatch):
    """`as_of=` applies the ttl as of that time (== brute force at the edge, to the microsecond), over the env var;
    a naive datetime is refused."""
    from roost.features import online, push

    rng, _ = _setup(fws, 26)
    pushes = [rows(rng, 40, hours=10) for _ in range(2)]
    for p in pushes:
        push("clicks_ttl", p, to="online")
    held = all_rows(rows(rng, 0), pushes)
    ttl = timedelta(hours=3)
    edge = brute_latest(held, 3)["event_time"] + ttl
    monkeypatch.setenv("ROOST_ONLINE_AS_OF", "2030-01-01T00:00:00Z")  # the argument wins over the default
    for now in (edge, edge + timedelta(microseconds=1), T0 + timedelta(hours=11)):
        got = online(["clicks_ttl:label"], {"user_id": USERS}, as_of=now, output="arrow").column("label").to_pylist()
        lat = [brute_latest(held, u) for u in USERS]  # every row is at or before `now`: its latest, unless too old
        exp = [None if r is None or r["event_time"] < now - ttl else r["label"] for r in lat]
        assert got == exp, now
    assert got != [None] * len(USERS)
    assert online(["clicks_ttl:label"], {"user_id": USERS}, output="arrow").column("label").null_count == len(USERS)
    with pytest.raises(RoostError, match="as_of"):
        online(["clicks_ttl:label"], {"user_id": USERS}, as_of=datetime(2024, 5, 1))


def test_cli_get_as_of_leaves_the_environment_alone(fws, cli, monkeypatch):
    from roost.features import push

    monkeypatch.delenv("ROOST_ONLINE_AS_OF", raising=False)
    rng, _ = _setup(fws, 27)
    p = rows(rng, 20, hours=2)
    push("clicks_ttl", p, to="online")
    code, out, err = cli(
        "features",
        "get",
        "--view",
        "clicks_ttl",
        "--entity",
        "user_id=1,2,3",
        "--as-of",
        (T0 + timedelta(hours=2)).isoformat(),
        "--json",
    )
    assert code == 0, err
    assert "ROOST_ONLINE_AS_OF" not in os.environ
    import json

    got = json.loads(out)
    held = all_rows(rows(rng, 0), [p])
    exp = [brute_pit(held, u, T0 + timedelta(hours=2), timedelta(hours=3)) for u in (1, 2, 3)]
    assert [r["label"] for r in got] == [None if r is None else r["label"] for r in exp]
