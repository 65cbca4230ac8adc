"""The Redis upsert's arguments, against independent references: the rows cut the script's way are the latest row per
key of a brute force (ties: the later row), as orjson (or json, for infinities) writes each row alone, also for text
values holding quotes, brackets and newlines; and the packed EVALSHA survives a dropped connection."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pyarrow as pa
from push_helpers import fresh_redis

MIN = -(2**63)
TRICKY = ["],[", "a],[b", "]", "[", "],", ",[", "x\ny", '"],["', "\\", "", "é日本\U0001f600", "]\n["]


def _cut(text: bytes, lens: list[int]) -> list[bytes]:
    """The rows as the upsert script cuts them: row i is the next lens[i] bytes."""
    out, pos = [], 0
    for n in lens:
        out.append(text[pos : pos + n])
        pos += n
    assert pos == len(text), "the lengths do not end at the text's end"
    return out


def test_encode_keeps_one_row_per_key_and_its_frame():
    """`encode`'s arguments: oldest/newest event time, the times, keys and lengths, and rows that cut the script's way
    into the latest row per key (also on the json.dumps path that infinities take, and with tricky text)."""
    from roost.features.online_stores.redis_rows import encode

    rng = np.random.default_rng(2)
    for case in range(40):
        n = int(rng.integers(1, 25))
        keys = [f"k{int(x)}" for x in rng.integers(0, 8, n)]
        et = [int(x) for x in rng.integers(0, 5, n)]
        ct = [MIN] * n if case % 2 else [int(x) for x in rng.integers(0, 3, n)]
        score = [float(x) for x in rng.normal(size=n)]
        if case % 4 == 3:
            score[0] = float("inf")
        label = [str(rng.choice(TRICKY)) for _ in range(n)]
        oldest, newest, times, doc, text = encode(keys, et, ct, [score, label], ["float64", "string"])
        best: dict[str, int] = {}
        for i in range(n):
            if keys[i] not in best or (et[i], ct[i]) >= (et[best[keys[i]]], ct[best[keys[i]]]):
                best[keys[i]] = i
        keep = sorted(best.values())
        head = orjson.loads(doc)
        assert head["k"] == [keys[i] for i in keep]
        rows = [json.loads(r) for r in _cut(text, head["n"])]  # (Python's json reads Infinity)
        assert rows == [[et[i], ct[i], score[i], label[i]] for i in keep], case
        if case % 4 != 3:
            assert _cut(text, head["n"]) == [orjson.dumps((et[i], ct[i], score[i], label[i])) for i in keep]
        assert (oldest, newest) == (min(et[i] for i in keep), max(et[i] for i in keep))
        want_times = [[et[i] for i in keep]] + ([] if case % 2 else [[ct[i] for i in keep]])
        assert orjson.loads(times) == want_times


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


def test_int_keys_json_equals_the_row_keys_dumped():
    """The keys' JSON written from the ids' text equals orjson's dumps of `row_keys` (f-strings), byte for byte: ids at
    the int64 edges, negative, repeated digits; prefixes and view names holding characters JSON escapes."""
    from roost.features.online_stores.redis_rows import int_keys_json

    rng = np.random.default_rng(3)
    heads = ["roost:p:@clicks:user_id:", 'pre"fix\\x:@v:k:', "é:@v\t:k:", ""]
    for case in range(200):
        n = int(rng.integers(1, 50))
        ids = [int(x) for x in rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)]
        if case % 3 == 0:
            ids[: min(n, 4)] = [0, -1, 2**63 - 1, -(2**63)][: min(n, 4)]
        head = heads[case % len(heads)]
        want = orjson.dumps([f"{head}{x}" for x in ids])
        assert int_keys_json(head, ids) == want, case
        assert orjson.loads(int_keys_json(head, ids)) == [f"{head}{x}" for x in ids]


def test_the_integer_key_shortcut_writes_what_the_general_path_writes(redis_url):
    """Random pushes of one int64 key (unique ids: the keys' JSON from the ids' text; repeated ids: the general path)
    against the same pushes through a store whose shortcut is off: every key and row in Redis is the same."""
    import redis

    from roost.features.online_stores import ViewData
    from roost.features.online_stores import redis as redis_store
    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    keys, fields = {"user_id": "int64"}, {"clicks": "int64", "label": "string"}
    ts = pa.timestamp("us", tz="UTC")
    fast, slow = RedisOnlineStore(url, prefix="fast"), RedisOnlineStore(url, prefix="slow")
    rng = np.random.default_rng(4)
    for w in range(30):
        n = int(rng.integers(1, 40))
        ids = rng.integers(-5, 30, n) if w % 2 else rng.choice(np.arange(-(2**40), 2**40, 2**30), n, replace=False)
        t = pa.table(
            {
                "user_id": pa.array(ids, pa.int64()),
                "clicks": pa.array(rng.integers(0, 100, n), pa.int64()),
                "label": pa.array([str(rng.choice(TRICKY)) for _ in range(n)]),
                "__et": pa.array(rng.integers(0, 20, n) + w * 10, pa.int64()).cast(ts),
                "__ct": pa.nulls(n, ts),
            }
        )
        assert fast.write([ViewData("v", keys, fields, t)]) is not None
        saved = redis_store.INT_KEYS
        redis_store.INT_KEYS = ()  # the general path: row keys as f-strings, dumped
        try:
            slow.write([ViewData("v", keys, fields, t)])
        finally:
            redis_store.INT_KEYS = saved
    r = redis.Redis.from_url(url)
    got = {k[len(b"fast") :]: r.get(k) for k in r.scan_iter(match="fast:@v:*")}
    want = {k[len(b"slow") :]: r.get(k) for k in r.scan_iter(match="slow:@v:*")}
    assert got == want and len(got) > 30
    assert r.get("fast:__newest:v") == r.get("slow:__newest:v")
    fast.close()
    slow.close()
    r.close()
