"""The Redis store's row layout (one key per view and entity) against a real redis-server: data of the legacy hash
layout still reads and is migrated by the first write (a reader made before keeps reading), infinities round-trip,
and concurrent writers keep the latest row per entity (brute force)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pyarrow as pa
from push_helpers import fresh_redis

MIN = -(2**63)
KEYS = {"user_id": "int64"}
FIELDS = {"clicks": "int64", "score": "float64", "label": "string"}
TS = pa.timestamp("us", tz="UTC")


def _table(users, clicks, scores, labels, et, ct=None):
    n = len(users)
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "clicks": pa.array(clicks, pa.int64()),
            "score": pa.array(scores, pa.float64()),
            "label": pa.array(labels, pa.string()),
            "__et": pa.array(et, pa.int64()).cast(TS),
            "__ct": pa.array(ct if ct is not None else [None] * n, pa.int64()).cast(TS),
        }
    )


def _legacy(r, prefix: str, view: str, rows: dict[int, tuple]) -> None:
    """Write `rows` (user -> (clicks, score, label, et, ct)) the way the legacy layout stored them: one hash per
    entity with 'view:field' text fields (a null field absent), the index and a definition without 'layout'."""
    for u, (c, s, lab, et, ct) in rows.items():
        hk = f"{prefix}:user_id:{u}"
        m = {f"{view}:__et": str(et), f"{view}:__ct": str(MIN if ct is None else ct)}
        for f, v in (("clicks", c), ("score", None if s is None else repr(s)), ("label", lab)):
            if v is not None:
                m[f"{view}:{f}"] = str(v)
        r.hset(hk, mapping=m)
        r.hset(hk, "other:x", "kept")  # another view's field in the same hash: the migration leaves it
        r.zadd(f"{prefix}:__idx:{view}", {hk: et})
    r.hset(f"{prefix}:__views", view, json.dumps({"keys": KEYS, "fields": FIELDS}))


def test_legacy_layout_reads_then_migrates_on_the_first_write(redis_url):
    import redis

    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    r = redis.Redis.from_url(fresh_redis(redis_url))
    old = {1: (10, 0.5, "a", 100, None), 2: (20, None, "b", 200, 7), 3: (30, 1.5, None, 300, None)}
    _legacy(r, "lg", "v", old)
    st = RedisOnlineStore(redis_url, prefix="lg")
    early = st.reader("v", KEYS, FIELDS, with_time=True, with_created=True)
    users = [1, 2, 3, 4]
    want = {u: [c, s, lab, et, ct] for u, (c, s, lab, et, ct) in old.items()}
    exp = [[want[u][j] if u in want else None for u in users] for j in range(5)]
    assert early.read([users]) == exp

    # newer row for 1, an older one for 2 (kept), a tie for 3 at a greater created time (wins), a new entity 4
    st.write(
        [
            ViewData(
                "v",
                KEYS,
                FIELDS,
                _table(
                    [1, 2, 3, 4],
                    [11, 21, 31, 41],
                    [0.25, 2.0, None, 4.0],
                    ["a2", "b2", "c2", "d"],
                    [150, 150, 300, 50],
                    [None, 9, 5, None],
                ),
            )
        ]
    )
    want[1] = [11, 0.25, "a2", 150, None]
    want[3] = [31, None, "c2", 300, 5]
    want[4] = [41, 4.0, "d", 50, None]
    exp = [[want[u][j] for u in users] for j in range(5)]
    assert early.read([users]) == exp  # made before the migration: reads the row layout now
    assert st.reader("v", KEYS, FIELDS, with_time=True, with_created=True).read([users]) == exp
    for u in old:  # the legacy fields are gone, another view's field is kept
        assert {k.decode() for k in r.hgetall(f"lg:user_id:{u}")} == {"other:x"}
    assert "layout" in json.loads(r.hget("lg:__views", "v"))
    assert st.stats("v")["rows"] == 4
    st.close()


def test_legacy_view_drops_and_samples(redis_url):
    import redis

    from roost.features.online_stores.redis import RedisOnlineStore

    r = redis.Redis.from_url(fresh_redis(redis_url))
    _legacy(r, "ld", "v", {1: (10, 0.5, "a", 100, None), 2: (20, 1.0, "b", 200, None)})
    st = RedisOnlineStore(redis_url, prefix="ld")
    got = st.sample("v", 1)
    assert got == [{"user_id": 2, "clicks": 20, "score": 1.0, "label": "b", "__et": 200}]
    st.drop_view("v")
    assert not st.has_view("v")
    assert {k.decode() for k in r.hgetall("ld:user_id:1")} == {"other:x"}
    st.close()


def test_infinities_and_nan_round_trip(redis_url):
    """orjson writes infinities as null: the store must keep them (NaN still reads as missing)."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="inf")
    vals = [float("inf"), float("-inf"), float("nan"), None, 1e308]
    st.write([ViewData("v", KEYS, FIELDS, _table([1, 2, 3, 4, 5], [1] * 5, vals, ["x"] * 5, [1] * 5))])
    got = st.reader("v", KEYS, FIELDS).read([[1, 2, 3, 4, 5]])
    assert got[1] == [float("inf"), float("-inf"), None, None, 1e308]
    assert got[2] == ["x"] * 5
    st.close()


def test_concurrent_writers_keep_the_latest_row(redis_url):
    """Two stores (two connections) write interleaved batches of the same entities from two threads; every
    event time is distinct, so the brute force's answer does not depend on the interleaving."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    rng = np.random.default_rng(3)
    times = rng.permutation(4000)  # distinct event times, out of order across and within batches
    batches = [times[i : i + 50] for i in range(0, 4000, 50)]
    best: dict[int, tuple[int, int]] = {}
    plan = []
    for b in batches:
        users = rng.integers(0, 30, len(b)).tolist()
        plan.append((users, [int(t) for t in b]))
        for u, t in zip(users, b):
            if u not in best or t > best[u][0]:
                best[u] = (int(t), int(t) * 3)
    stores = [RedisOnlineStore(url, prefix="cc") for _ in range(2)]

    def run(k: int) -> None:
        for users, et in plan[k::2]:
            t = _table(users, [e * 3 for e in et], [0.0] * len(et), ["x"] * len(et), et)
            stores[k].write([ViewData("v", KEYS, FIELDS, t)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    users = sorted(best)
    got = stores[0].reader("v", KEYS, FIELDS, with_time=True).read([users])
    assert got[0] == [best[u][1] for u in users]
    assert got[3] == [best[u][0] for u in users]
    for s in stores:
        s.close()


def test_several_join_keys_and_expiry(redis_url):
    """Composite keys address their own rows (no '|' confusion); expire_before drops rows older than the mark."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="ck")
    keys = {"a": "string", "b": "string"}

    def table(a, b, et):
        return pa.table(
            {
                "a": pa.array(a),
                "b": pa.array(b),
                "clicks": pa.array(list(range(1, len(a) + 1)), pa.int64()),
                "score": pa.array([0.5] * len(a)),
                "label": pa.array(["l"] * len(a)),
                "__et": pa.array(et, pa.int64()).cast(TS),
                "__ct": pa.nulls(len(a), TS),
            }
        )

    ids = [["x|y", "x", "p"], ["z", "y|z", "q"]]
    st.write([ViewData("v", keys, FIELDS, table(*ids, [10, 20, 30]))])
    assert st.reader("v", keys, FIELDS).read(ids)[0] == [1, 2, 3]
    st.write([ViewData("v", keys, FIELDS, table(["p"], ["q"], [40]), expire_before=25)])
    assert st.reader("v", keys, FIELDS, with_time=True).read(ids)[::3] == [[None, None, 1], [None, None, 40]]
    assert st.stats("v") == {"rows": 1, "newest_event": 40}
    st.close()


def test_missing_event_times_follow_the_created_time(redis_url):
    """A row without event time is older than any row with one; between two such rows the created time decides
    (null oldest), the later write winning a full tie: across writes, as the brute force says."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="ne")
    writes = [  # user -> (event time, created time) per write; clicks number the writes
        {1: (None, 5), 2: (None, None), 3: (None, 5), 4: (7, None)},
        {1: (None, 3), 2: (None, None), 3: (None, 6), 4: (None, 9)},
    ]
    best: dict[int, tuple] = {}
    for w, rows in enumerate(writes):
        users = list(rows)
        et = [rows[u][0] for u in users]
        ct = [rows[u][1] for u in users]
        st.write([ViewData("v", KEYS, FIELDS, _table(users, [w] * 4, [0.0] * 4, ["x"] * 4, et, ct))])
        for u in users:
            t = tuple(MIN if x is None else x for x in rows[u])
            if u not in best or t >= best[u][0]:
                best[u] = (t, w)
    got = st.reader("v", KEYS, FIELDS).read([[1, 2, 3, 4]])
    assert got[0] == [best[u][1] for u in [1, 2, 3, 4]] == [0, 1, 1, 0]
    st.close()


def test_the_in_order_shortcut_is_exact_at_its_edge(redis_url):
    """The script skips reading stored times when every row is newer than the newest stored one: a write whose
    oldest row ties the newest stored time must still compare created times (also when every stored row lacks an
    event time)."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    for k, (t_old, t_new) in enumerate([(100, 100), (None, None)]):
        st = RedisOnlineStore(url, prefix=f"edge{k}")
        st.write([ViewData("v", KEYS, FIELDS, _table([1], [0], [0.0], ["x"], [t_old], [5]))])
        later = None if t_new is None else t_new + 1
        st.write([ViewData("v", KEYS, FIELDS, _table([1, 2], [1, 1], [0.0] * 2, ["x"] * 2, [t_new, later], [3, 3]))])
        got = st.reader("v", KEYS, FIELDS).read([[1, 2]])
        assert got[0] == [0, 1]  # entity 1: (t, 3) is older than the stored (t, 5)
        st.close()


def test_text_keys_and_values_survive_the_framing(redis_url):
    """Rows travel as JSON texts cut by byte lengths and keys inside a JSON document: multi-byte characters, quotes,
    brackets, backslashes, NUL, newlines and empty strings come back as written, in reads and samples."""
    from roost.features.online_stores import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="tx")
    keys, fields = {"k": "string"}, {"s": "string"}
    ids = ["é", 'a"b\\c', "日本", "x\x00y", "\U0001f600", "],[", "a\nb"]
    vals = ["ü", '"]["', "\n\t", "", "\U0001f600" * 3, "a],[b", "]\n["]
    for n in (len(ids), 5):
        t = pa.table(
            {
                "k": ids[:n],
                "s": vals[:n],
                "__et": pa.array(range(n), pa.int64()).cast(TS),
                "__ct": pa.nulls(n, TS),
            }
        )
        st.write([ViewData(f"v{n}", keys, fields, t)])
        assert st.reader(f"v{n}", keys, fields).read([ids[:n]]) == [vals[:n]]
        assert {r["k"]: r["s"] for r in st.sample(f"v{n}", n)} == dict(zip(ids[:n], vals[:n]))
    st.close()
