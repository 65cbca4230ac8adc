"""The online stores' upsert rule against a brute force: per entity, the row with the greatest (event time, created
time) wins, the later row at equal times, null created time older than any; rows of one entity within one write
and across writes alike; null fields read as missing. SQLite and a real redis-server."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from push_helpers import fresh_redis

MIN = -(2**63)
KEYS = {"user_id": "int64"}
FIELDS = {"clicks": "int64", "score": "float64", "label": "string"}


def _batch(rng, n):
    """Rows of 8 entities on a coarse time grid (many equal event times), created times sometimes null."""
    et = (1_700_000_000 + rng.integers(0, 4, n) * 60) * 1_000_000
    ct = [None if rng.random() < 0.3 else int(e + rng.integers(0, 3) * 1_000_000) for e in et]
    return {
        "user_id": rng.integers(0, 8, n).tolist(),
        "clicks": [None if rng.random() < 0.15 else int(x) for x in rng.integers(0, 100, n)],
        "score": [None if rng.random() < 0.15 else float(x) for x in rng.normal(size=n)],
        "label": [None if rng.random() < 0.15 else f"l{int(x)}" for x in rng.integers(0, 1000, n)],
        "__et": et.tolist(),
        "__ct": ct,
    }


def _table(b):
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "user_id": pa.array(b["user_id"], pa.int64()),
            "clicks": pa.array(b["clicks"], pa.int64()),
            "score": pa.array(b["score"], pa.float64()),
            "label": pa.array(b["label"], pa.string()),
            "__et": pa.array(b["__et"], pa.int64()).cast(ts),
            "__ct": pa.array(b["__ct"], pa.int64()).cast(ts),
        }
    )


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upsert_keeps_the_latest_row_per_entity(kind, seed, request, tmp_path):
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore
    from roost.features.online_stores.sqlite import SQLiteOnlineStore

    if kind == "redis":
        store = RedisOnlineStore(fresh_redis(request.getfixturevalue("redis_url")), prefix=f"t{seed}")
    else:
        store = SQLiteOnlineStore(f"sqlite:///{tmp_path}/o.db")
    rng = np.random.default_rng(seed)
    best: dict[int, tuple] = {}
    for _ in range(6):
        b = _batch(rng, int(rng.integers(1, 30)))
        store.write([ViewData("v", KEYS, FIELDS, _table(b))])
        for i, u in enumerate(b["user_id"]):  # brute force: a row replaces the held one unless strictly older
            t = (b["__et"][i], MIN if b["__ct"][i] is None else b["__ct"][i])
            if u not in best or t >= best[u][0]:
                best[u] = (t, b["clicks"][i], b["score"][i], b["label"][i])
        users = list(range(10))
        got = store.reader("v", KEYS, FIELDS, with_time=True).read([users])
        for j, f in enumerate(["clicks", "score", "label"]):
            assert got[j] == [best[u][1 + j] if u in best else None for u in users], f
        assert got[3] == [best[u][0][0] if u in best else None for u in users]
    store.close()


def test_sqlite_wal_stays_bounded_and_every_commit_is_read(tmp_path):
    """Many writes keep the WAL under the store's checkpoint mark (WAL_PAGES pages, plus one write), and a fresh
    connection reads every committed row (brute force)."""
    import os
    import sqlite3

    from roost.features.online_stores import ViewData
    from roost.features.online_stores.sqlite import WAL_PAGES, SQLiteOnlineStore

    path = tmp_path / "o.db"
    store = SQLiteOnlineStore(f"sqlite:///{path}")
    rng = np.random.default_rng(9)
    latest: dict[int, int] = {}
    biggest = 0
    for b in range(160):  # each write touches most of the table's pages: ~160 x 0.3 MB of WAL without checkpoints
        users = rng.choice(20_000, 100, replace=False)
        t = pa.table(
            {
                "user_id": pa.array(users, pa.int64()),
                "clicks": pa.array(np.full(100, b), pa.int64()),
                "score": pa.array(np.zeros(100)),
                "label": pa.array(["x" * 40] * 100),
                "__et": pa.array(np.full(100, 1_700_000_000_000_000 + b), pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "__ct": pa.nulls(100, pa.timestamp("us", tz="UTC")),
            }
        )
        store.write([ViewData("v", KEYS, FIELDS, t)])
        latest.update((int(u), b) for u in users)
        biggest = max(biggest, os.path.getsize(f"{path}-wal"))
    assert biggest > 4 << 20  # the test wrote past SQLite's default mark
    assert biggest < (WAL_PAGES + 1000) * 4096, biggest
    store.close()
    con = sqlite3.connect(path)
    got = dict(con.execute('SELECT user_id, clicks FROM "fv_v"').fetchall())
    con.close()
    assert got == latest


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_every_dtype_round_trips(kind, request, tmp_path):
    """bool, int32, float32 (as the double of its value), timestamps (microseconds), NaN and null: read back as
    written, the values a brute force keeps."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore
    from roost.features.online_stores.sqlite import SQLiteOnlineStore

    if kind == "redis":
        store = RedisOnlineStore(fresh_redis(request.getfixturevalue("redis_url")), prefix="dt")
    else:
        store = SQLiteOnlineStore(f"sqlite:///{tmp_path}/o.db")
    fields = {"flag": "bool", "n32": "int32", "f32": "float32", "when": "timestamp", "f64": "float64"}
    ts = pa.timestamp("us", tz="UTC")
    f32 = [0.1, None, float("nan"), -3.4e38, 1.0]
    t = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "flag": pa.array([True, False, None, True, False]),
            "n32": pa.array([-(2**31), 2**31 - 1, None, 0, 7], pa.int32()),
            "f32": pa.array(f32, pa.float32()),
            "when": pa.array([0, -1, None, 1_700_000_000_123_456, 253_402_300_799_000_000], pa.int64()).cast(ts),
            "f64": pa.array([0.1, 1e300, float("nan"), None, -0.0]),
            "__et": pa.array([10, 10, 10, 10, 10], pa.int64()).cast(ts),
            "__ct": pa.nulls(5, ts),
        }
    )
    store.write([ViewData("d", KEYS, fields, t)])
    got = store.reader("d", KEYS, fields).read([[1, 2, 3, 4, 5, 6]])
    exp32 = [None if v is None or v != v else float(np.float32(v)) for v in f32]
    assert got[0] == [True, False, None, True, False, None]
    assert got[1] == [-(2**31), 2**31 - 1, None, 0, 7, None]
    assert got[2] == [*exp32, None]
    assert got[3] == [0, -1, None, 1_700_000_000_123_456, 253_402_300_799_000_000, None]
    assert got[4] == [0.1, 1e300, None, None, -0.0, None]
    store.close()
