"""Push: pushed rows reach `training_set` at their event times (== a brute-force PIT join over source + pushed
rows, with late, out-of-order and tied pushes) and the online store (== the brute-force latest row)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from fs_helpers import write_defs
from push_helpers import DEFS, FIELDS, T0, all_rows, brute_latest, brute_pit, fresh_redis, rows


def _setup(ws, seed=0, n_batch=150):
    from roost.features import apply

    rng = np.random.default_rng(seed)
    batch = rows(rng, n_batch)
    batch.to_parquet(ws.root / "data" / "events.parquet")
    write_defs(ws.root, DEFS)
    apply()
    return rng, batch


def _pushes(rng, batch, n_pushes=6):
    """Random pushes: fresh rows, late and out-of-order ones, exact copies of source rows' times (ties) and
    re-pushes of earlier pushed rows with new values."""
    out = []
    for i in range(n_pushes):
        p = rows(rng, int(rng.integers(1, 40)))
        tie = batch.sample(5, random_state=i)[["user_id", "event_time", "created_time"]]
        tie = tie.assign(clicks=rng.integers(0, 9, 5), score=0.5 + i, label=f"tie{i}")
        parts = [p, tie]
        if out:
            again = out[-1].head(3).assign(clicks=-i, label=f"again{i}")
            parts.append(again)
        out.append(pd.concat(parts, ignore_index=True))
    return out


def _entity_frame(rng, n=400):
    times = [T0 + timedelta(minutes=int(m)) for m in rng.integers(-60, 32 * 60, n)]
    return pd.DataFrame(
        {"user_id": rng.integers(0, 13, n).astype("int64"), "event_time": pd.to_datetime(times, utc=True)}
    )


def _expected(held, ent, ttl):
    exp = {f: [] for f in FIELDS}
    for u, t in zip(ent["user_id"], ent["event_time"]):
        r = brute_pit(held, int(u), t.to_pydatetime(), ttl)
        for f in FIELDS:
            exp[f].append(None if r is None else r[f])
    return exp


def _check_offline(held, rng):
    from roost.features import training_set

    ent = _entity_frame(rng)
    for view, ttl in (("clicks", None), ("clicks_ttl", timedelta(hours=3))):
        got = training_set(ent, [f"{view}:{f}" for f in FIELDS], output="arrow")
        exp = _expected(held, ent, ttl)
        for f in FIELDS:
            assert got.column(f).to_pylist() == exp[f], (view, f)


def _check_online(held, url=None):
    from roost.features import online

    users = list(range(13))
    got = online([f"clicks:{f}" for f in FIELDS], {"user_id": users}, online_store=url, output="arrow")
    for f in FIELDS:
        exp = [None if (r := brute_latest(held, u)) is None else r[f] for u in users]
        assert got.column(f).to_pylist() == exp, f


@pytest.mark.parametrize(("seed", "engine"), [(0, "auto"), (1, "auto"), (2, "sql")])
def test_push_then_training_set_equals_brute_force(fws, seed, engine, monkeypatch):
    from roost.features import pit, push

    monkeypatch.setattr(pit, "ENGINE", engine)  # the NumPy join and the ASOF SQL fallback alike

    rng, batch = _setup(fws, seed)
    pushes = _pushes(rng, batch)
    for p in pushes:  # the log is per view: each view gets the pushes
        assert push("clicks", p) == len(p)
        assert push("clicks_ttl", p) == len(p)
    held = all_rows(batch, pushes)
    _check_offline(held, rng)
    # only pushed rows are online (nothing materialised): the latest pushed row per entity
    _check_online(all_rows(batch.head(0), pushes))


def test_materialize_then_push_then_materialize_agree_online_and_offline(fws):
    from roost.features import materialize, push

    rng, batch = _setup(fws, 3)
    end = T0 + timedelta(days=3)
    materialize(end=end, views=["clicks"])
    pushes = _pushes(rng, batch, 4)
    for p in pushes[:2]:
        push("clicks", p)
        push("clicks_ttl", p)
    held = all_rows(batch, pushes[:2])
    _check_online(held)
    materialize(start=T0 - timedelta(days=1), end=end, views=["clicks"])  # a backfill over pushed rows
    _check_online(held)
    for p in pushes[2:]:
        push("clicks", p.to_dict("records"))  # a list of dicts works the same
        push("clicks_ttl", {c: p[c].tolist() for c in p.columns})  # and a dict of columns
    held = all_rows(batch, pushes)
    _check_online(held)
    _check_offline(held, rng)


def test_repush_is_idempotent_online_and_offline(fws):
    from roost.features import online, push, training_set

    rng, batch = _setup(fws, 4)
    pushes = _pushes(rng, batch, 3)
    for p in pushes:
        push("clicks", p)
    ent = _entity_frame(rng)
    before = training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow")
    on_before = online([f"clicks:{f}" for f in FIELDS], {"user_id": list(range(13))}, output="arrow")
    for p in pushes:  # a stream consumer redelivering every batch (at-least-once)
        push("clicks", p)
    assert training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow").equals(before)
    assert online([f"clicks:{f}" for f in FIELDS], {"user_id": list(range(13))}, output="arrow").equals(on_before)
    # the log reads no duplicate (key, event time, created time)
    from roost.features import repo
    from roost.features.sources import connect, view_rows

    con = connect(fws.root)
    spec = repo.get("view", "clicks")
    sql = view_rows(con, spec, repo.get("source", "events"), fws.root)
    n, distinct = con.sql(
        f"SELECT count(*), count(DISTINCT (user_id, __et, __ct, __rn > {len(batch)})) FROM ({sql})"
    ).fetchall()[0]
    held = all_rows(batch, pushes)
    assert n == len(held) and n >= distinct


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_cli_push_reads_csv_parquet_jsonl(fws, cli, fmt):
    """`roost features push VIEW FILE` pushes the file's rows (times as ISO text with offsets in csv/jsonl)."""
    from roost.features import online

    rng, batch = _setup(fws, 5)
    p = rows(rng, 30, ct_none=1.0).drop(columns=["created_time"])
    path = fws.root / f"rows.{fmt}"
    if fmt == "parquet":
        p.to_parquet(path)
    else:
        text = p.assign(event_time=p.event_time.map(lambda t: t.isoformat()))
        if fmt == "csv":
            text.to_csv(path, index=False)
        else:
            text.to_json(path, orient="records", lines=True)
    code, out, err = cli("features", "push", "clicks", str(path))
    assert code == 0, err
    assert "pushed 30 rows" in out
    held = all_rows(batch.head(0), [p])
    got = online([f"clicks:{f}" for f in FIELDS], {"user_id": list(range(13))}, output="arrow")
    for f in FIELDS:
        assert got.column(f).to_pylist() == [None if (r := brute_latest(held, u)) is None else r[f] for u in range(13)]
    code, _, err = cli("features", "push", "clicks", str(fws.root / "nope.csv"))
    assert code == 2 and "nope.csv" in err


def test_push_to_redis_equals_brute_force(fws, redis_url):
    """The same pushes into a real redis-server: the online store holds the brute-force latest row per entity
    (several rows of one entity in one push, older ones after newer ones)."""
    from roost.features import push

    fresh_redis(redis_url)
    rng, batch = _setup(fws, 6)
    pushes = _pushes(rng, batch, 4)
    for p in pushes:
        push("clicks", p, online_store=redis_url)
    _check_online(all_rows(batch.head(0), pushes), url=redis_url)
    for p in pushes:  # idempotent re-push
        push("clicks", p, online_store=redis_url)
    _check_online(all_rows(batch.head(0), pushes), url=redis_url)


def test_concurrent_pushes_agree_online_and_offline(fws, monkeypatch):
    """Threads pushing tied rows (same users, same event time) at once: the log's order is the online write
    order, so the online value of every user is the one training_set picks after the tie (the last push).
    A random pause before each online write lets pushes overtake each other where nothing serialises them."""
    import random
    import threading
    import time

    from roost.features import online, training_set
    from roost.features.online_stores.sqlite import SQLiteOnlineStore
    from roost.features.push import Pusher

    real = SQLiteOnlineStore.write

    def slow(self, views):
        time.sleep(random.random() * 0.01)
        return real(self, views)

    monkeypatch.setattr(SQLiteOnlineStore, "write", slow)

    _setup(fws, 8)
    t = T0 + timedelta(days=5)
    errors = []

    def worker(w):
        try:
            p = Pusher("clicks")
            for i in range(8):
                p.push(
                    {
                        "user_id": [0, 1, 2],
                        "event_time": [t] * 3,
                        "clicks": [w * 100 + i] * 3,
                        "score": [float(w)] * 3,
                        "label": [f"w{w}i{i}"] * 3,
                    }
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    ent = pd.DataFrame({"user_id": [0, 1, 2], "event_time": pd.to_datetime([t] * 3, utc=True)})
    off = training_set(ent, [f"clicks:{f}" for f in FIELDS], output="arrow").select(FIELDS).to_pylist()
    on = online([f"clicks:{f}" for f in FIELDS], {"user_id": [0, 1, 2]}, output="arrow").select(FIELDS).to_pylist()
    assert off == on
    assert len({r["label"] for r in on}) == 1  # every user got its value from the same (last) push
