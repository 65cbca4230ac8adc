"""The Redis upsert's arguments, against independent references: the rows' JSON texts cut from one dumps equal one
dumps per row (also for text values holding the separator, newlines and quotes), the client's latest row per key
equals a brute force (ties: the later row), and the packed EVALSHA survives a dropped connection."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pyarrow as pa
from push_helpers import fresh_redis

MIN = -(2**63)
TRICKY = ["],[", "a],[b", "]", "[", "],", ",[", "x\ny", '"],["', "\\", "", "é日本\U0001f600", "]\n["]


def _random_rows(rng: np.random.Generator, n: int, tricky: float) -> list[tuple]:
    rows = []
    for _ in range(n):
        text = str(rng.choice(TRICKY)) if rng.random() < tricky else f"l{int(rng.integers(0, 10**6))}"
        score = float("nan") if rng.random() < 0.1 else float(rng.normal()) * 10 ** int(rng.integers(-5, 20))
        rows.append(
            (
                int(rng.integers(0, 2**53)),
                MIN if rng.random() < 0.5 else int(rng.integers(0, 2**53)),
                int(rng.integers(-(2**63), 2**63 - 1)),
                score,
                None if rng.random() < 0.1 else text,
                bool(rng.random() < 0.5),
            )
        )
    return rows


def test_row_texts_equal_one_dumps_per_row():
    """`_row_texts` (one dumps, split at the separators) against orjson's dumps of each row alone, with and without
    text values that hold `],[` (the split miscounts: each row is then dumped alone)."""
    from roost.features.online_stores.redis_rows import _row_texts

    rng = np.random.default_rng(0)
    for case in range(60):
        n = int(rng.integers(1, 40))
        rows = _random_rows(rng, n, tricky=[0.0, 0.05, 0.5][case % 3])
        got = _row_texts(rows)
        assert got == [orjson.dumps(r) for r in rows], case
        for text, row in zip(got, rows):  # each text is its row
            back = orjson.loads(text)
            assert back[:3] == list(row[:3]) and back[4:] == list(row[4:])
            assert back[3] == (None if math.isnan(row[3]) else row[3])


def test_latest_rows_equals_brute_force():
    """Per row key the row with the greatest (event time, created time), the later one at a full tie, in order; None
    when every key occurs once."""
    from roost.features.online_stores.redis_rows import latest_rows

    rng = np.random.default_rng(1)
    for case in range(300):
        n = int(rng.integers(1, 30))
        keys = [f"k{int(x)}" for x in rng.integers(0, max(1, n // int(rng.integers(1, 4))), n)]
        et = [int(x) for x in rng.integers(0, 4, n)]  # few values: many ties
        ct = [MIN if rng.random() < 0.3 else int(x) for x in rng.integers(0, 3, n)]
        best: dict[str, int] = {}
        for i in range(n):
            if keys[i] not in best or (et[i], ct[i]) >= (et[best[keys[i]]], ct[best[keys[i]]]):
                best[keys[i]] = i
        want = None if len(best) == n else sorted(best.values())
        assert latest_rows(keys, et, ct) == want, case


def test_a_failed_send_is_retried_like_redis_py(redis_url, monkeypatch):
    """The upsert is sent packed on a pool connection: a connection error while sending is retried on a new
    connection (redis-py's retry, as for its own commands), and a killed connection is replaced; each writes once."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    st = RedisOnlineStore(url, prefix="drop")
    st.r.set_retry(Retry(NoBackoff(), 3))  # (the default differs between redis-py versions)
    keys, fields = {"user_id": "int64"}, {"clicks": "int64"}
    ts = pa.timestamp("us", tz="UTC")

    def data(users, clicks, et):
        t = pa.table(
            {
                "user_id": pa.array(users, pa.int64()),
                "clicks": pa.array(clicks, pa.int64()),
                "__et": pa.array(et, pa.int64()).cast(ts),
                "__ct": pa.nulls(len(users), ts),
            }
        )
        return ViewData("v", keys, fields, t)

    assert st.write([data([1, 2], [1, 2], [10, 10])]) == {"v": 2}
    send = redis.connection.Connection.send_packed_command
    fails = [1]

    def flaky(self, command, check_health=True):
        if fails[0]:
            fails[0] -= 1
            self.disconnect()
            raise redis.ConnectionError("dropped (test)")
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", flaky)
    assert st.write([data([2, 3], [20, 30], [20, 20])]) == {"v": 2}
    assert fails == [0]
    monkeypatch.undo()
    other = redis.Redis.from_url(url)
    assert other.client_kill_filter(_type="normal", skipme=True) >= 1
    assert st.write([data([3, 4], [31, 40], [30, 30])]) == {"v": 2}
    assert st.reader("v", keys, fields).read([[1, 2, 3, 4]]) == [[1, 20, 31, 40]]
    other.close()
    st.close()
