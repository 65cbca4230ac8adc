"""The Redis row layout without a per-view index, against a real redis-server and a brute force: writes in time
order read nothing (the view's newest event time decides), late writes and ties compare with the stored rows,
the rows-json-1 layout (rows + a sorted-set index) reads and converts on its first write, and expiry, stats,
samples and drops find a view's rows by SCAN (only that view's: glob characters in the prefix escaped)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pyarrow as pa
import pytest
from push_helpers import fresh_redis

MIN = -(2**63)
KEYS = {"user_id": "int64"}
FIELDS = {"clicks": "int64", "score": "float64", "label": "string"}
TS = pa.timestamp("us", tz="UTC")
USERS = list(range(12))


def _data(view, users, clicks, et, ct=None, expire=None):
    from roost.features.online_stores import ViewData

    n = len(users)
    t = pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "clicks": pa.array(clicks, pa.int64()),
            "score": pa.array([0.5] * n, pa.float64()),
            "label": pa.array([f"l{c}" for c in clicks], pa.string()),
            "__et": pa.array(et, pa.int64()).cast(TS),
            "__ct": pa.array(ct if ct is not None else [None] * n, pa.int64()).cast(TS),
        }
    )
    return ViewData(view, KEYS, FIELDS, t, expire)


def _calls(r, name: str) -> int:
    """Calls of one command since the last CONFIG RESETSTAT (commands run by scripts count)."""
    return int(r.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


class Brute:
    """Per entity the row with the greatest (event time, created time), the later write at a full tie."""

    def __init__(self) -> None:
        self.best: dict[int, tuple[tuple[int, int], int]] = {}

    def write(self, users, clicks, et, ct) -> None:
        for u, c, e, t in zip(users, clicks, et, ct):
            key = (MIN if e is None else e, MIN if t is None else t)
            if u not in self.best or key >= self.best[u][0]:
                self.best[u] = (key, c)

    def newest(self) -> int:
        return max(k[0] for k, _ in self.best.values())

    def check(self, store, view="v") -> None:
        got = store.reader(view, KEYS, FIELDS, with_time=True).read([USERS])
        want_t = [self.best[u][0][0] if u in self.best else None for u in USERS]
        assert got[0] == [self.best[u][1] if u in self.best else None for u in USERS]
        assert got[3] == [None if t == MIN else t for t in want_t]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_in_order_writes_read_nothing_and_every_write_equals_brute_force(redis_url, seed):
    """Random writes: in time order (after every stored row: no MGET), at the newest time exactly (a tie: the created
    times decide), late (older rows mixed in), several rows of one entity per write, null created times."""
    import redis

    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    r = redis.Redis.from_url(url)
    st = RedisOnlineStore(url, prefix=f"io{seed}")
    rng = np.random.default_rng(seed)
    ref = Brute()
    clicks = 0
    compared: dict[str, int] = {}
    for w in range(40):
        n = int(rng.integers(1, 9))
        users = rng.integers(0, len(USERS), n).tolist()  # repeats: several rows of one entity in one write
        kind = "first" if not ref.best else str(rng.choice(["order", "tie", "late"]))
        top = ref.newest() if ref.best else 0
        if kind in ("first", "order"):
            et = sorted((top + 1 + rng.integers(0, 5, n)).tolist())
        elif kind == "tie":  # the oldest row at the newest stored time, on the entity holding it
            holder = next(u for u, (k, _) in ref.best.items() if k[0] == top)
            users[0] = holder
            et = [top] + (top + rng.integers(0, 3, n - 1)).tolist()
        else:
            et = (top - rng.integers(0, 6, n)).tolist()
        ct = [None if rng.random() < 0.4 else int(x) for x in rng.integers(0, 3, n)]
        cl = list(range(clicks, clicks + n))
        clicks += n
        r.config_resetstat()
        st.write([_data("v", users, cl, et, ct)])
        mgets = _calls(r, "mget")
        own = Brute()  # the write's latest row per entity: a read is needed when one is not after every stored row
        own.write(users, cl, et, ct)
        oldest = min(k[0] for k, _ in own.best.values())
        if kind == "first" or oldest > top:
            assert mgets == 0, f"write {w} ({kind}) read stored rows"
        else:
            assert mgets == 1, f"write {w} ({kind}) did not compare with the stored rows"
            compared[kind] = compared.get(kind, 0) + 1
        assert _calls(r, "zadd") == 0  # no index on the write path
        ref.write(users, cl, et, ct)
        ref.check(st)
    assert st.stats("v") == {"rows": len(ref.best), "newest_event": ref.newest()}
    assert compared.get("tie", 0) > 0 and compared.get("late", 0) > 0  # both kinds were compared, not all shortcut
    st.close()


def _indexed(r, prefix: str, view: str, rows: dict[int, tuple]) -> None:
    """Write `rows` (user -> (clicks, et, ct)) the way the rows-json-1 layout stored them: a JSON row per entity key,
    a sorted-set index scored by event time (-inf: none) and a definition naming the layout."""
    for u, (c, et, ct) in rows.items():
        k = f"{prefix}:@{view}:user_id:{u}"
        r.set(k, json.dumps([MIN if et is None else et, MIN if ct is None else ct, c, 0.5, f"l{c}"]))
        r.zadd(f"{prefix}:__idx:{view}", {k: float("-inf") if et is None else et})
    r.hset(f"{prefix}:__views", view, json.dumps({"keys": KEYS, "fields": FIELDS, "layout": "rows-json-1"}))


@pytest.mark.parametrize("together", [False, True])
def test_the_indexed_layout_reads_then_converts_on_the_first_write(redis_url, together):
    """A rows-json-1 view reads, samples and counts from its index; the first write (alone: the script; with another
    view: the transaction) keeps every row, compares with them, drops the index and takes its top as the newest time."""
    import redis

    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    r = redis.Redis.from_url(url)
    old = {1: (10, 100, None), 2: (20, 300, 7), 3: (30, 200, None), 4: (40, None, 5)}
    _indexed(r, "ix", "v", old)
    _indexed(r, "ix", "w", {1: (99, 50, None)})
    st = RedisOnlineStore(url, prefix="ix")
    early = st.reader("v", KEYS, FIELDS, with_time=True)
    ref = Brute()
    ref.write(
        list(old), [c for c, _, _ in old.values()], [e for _, e, _ in old.values()], [t for *_, t in old.values()]
    )
    ref.check(st)
    assert st.stats("v") == {"rows": 4, "newest_event": 300}
    assert [x["user_id"] for x in st.sample("v", 2)] == [2, 3]  # the index's newest first

    # entity 2: older than its stored row (300) yet newer than the others' (the newest time must be 300, not less);
    # entity 3: a tie at 200 with a created time (wins over none); 5: new
    users, cl, et, ct = [2, 3, 5], [21, 31, 51], [250, 200, 260], [None, 1, None]
    views = [_data("v", users, cl, et, ct)]
    if together:
        views.append(_data("w", [1], [98], [60]))
    r.config_resetstat()
    st.write(views)
    assert _calls(r, "mget") == 1
    ref.write(users, cl, et, ct)
    ref.check(st)
    early_got = early.read([USERS])
    assert early_got[0] == [ref.best[u][1] if u in ref.best else None for u in USERS]
    assert r.exists("ix:__idx:v") == 0 and int(r.get("ix:__newest:v")) == 300
    assert json.loads(r.hget("ix:__views", "v"))["layout"] == "rows-json-2"
    assert st.stats("v") == {"rows": 5, "newest_event": 300}
    r.config_resetstat()
    st.write([_data("v", [4], [41], [301])])  # after the converted newest time: in order, nothing read
    assert _calls(r, "mget") == 0
    ref.write([4], [41], [301], [None])
    ref.check(st)
    if together:
        assert st.reader("w", KEYS, FIELDS).read([[1]])[0] == [98]
    st.close()


def test_expiry_stats_samples_and_drops_scan_only_their_view(redis_url, monkeypatch):
    """A prefix with glob characters, a view whose name starts like another's and another prefix's view of the same
    name: expiry (in SCAN steps of 7 keys) deletes exactly the view's rows older than the mark (rows without event
    time too), stats/samples see the rest, a drop removes only the view."""
    from roost.features.online_stores import redis_scan
    from roost.features.online_stores.redis import RedisOnlineStore

    monkeypatch.setattr(redis_scan, "COUNT", 7)
    url = fresh_redis(redis_url)
    st, other = RedisOnlineStore(url, prefix="p[1]*?\\x"), RedisOnlineStore(url, prefix="p1")
    rng = np.random.default_rng(9)
    users = list(range(60))
    et = [None if rng.random() < 0.1 else int(x) for x in rng.integers(0, 1000, 60)]
    for s in (st, other):
        for view in ("v", "v2"):
            s.write([_data(view, users, users, et)])
    cut = 500
    st.write([_data("v", [0], [1000], [990], expire=cut)])
    kept = {u: (c, e) for u, c, e in zip(users, users, et) if e is not None and e >= cut}
    kept[0] = (1000, 990)
    got = st.reader("v", KEYS, FIELDS, with_time=True).read([users])
    assert got[0] == [kept[u][0] if u in kept else None for u in users]
    assert st.stats("v") == {"rows": len(kept), "newest_event": 990}
    some = st.sample("v", 5)
    assert len(some) == 5 and all((x["clicks"], x["__et"]) == kept[x["user_id"]] for x in some)
    assert {x["user_id"]: (x["clicks"], x["__et"]) for x in st.sample("v", 1000)} == kept
    for s, view in ((st, "v2"), (other, "v"), (other, "v2")):
        assert s.stats(view)["rows"] == 60
    st.write([_data("v", users, users, [1] * 60, expire=10**6)])  # everything expires: no newest time
    assert st.stats("v") == {"rows": 0, "newest_event": None}
    st.write([_data("v", [1, 2], [1, 2], [5, 6])])
    st.drop_view("v")
    assert st.stats("v") is None and st.sample("v", 3) == []
    assert st.r.exists(st.tops_key("v")) == 0
    for s, view in ((st, "v2"), (other, "v"), (other, "v2")):
        assert s.stats(view)["rows"] == 60
    st.write([_data("v", [1], [7], [3])])  # after the drop: a new view, its old newest time forgotten
    assert st.stats("v") == {"rows": 1, "newest_event": 3}
    st.close()
    other.close()


def test_concurrent_in_order_writers_keep_the_latest_row(redis_url):
    """Two connections write batches whose times increase per writer but interleave between them (each writer's
    batch can be older than the other's last): the in-order shortcut and the comparisons together keep the
    brute-force latest row per entity."""
    from roost.features.online_stores.redis import RedisOnlineStore

    url = fresh_redis(redis_url)
    rng = np.random.default_rng(4)
    plan: list[list[tuple[list[int], list[int]]]] = [[], []]
    ref = Brute()
    for b in range(120):
        users = rng.integers(0, len(USERS), 6).tolist()
        et = (b * 10 + rng.integers(0, 15, 6)).tolist()  # overlaps the next batch's times
        plan[b % 2].append((users, et))
        ref.write(users, [e * 7 for e in et], et, [None] * 6)
    stores = [RedisOnlineStore(url, prefix="cio") for _ in range(2)]

    def run(k: int) -> None:
        for users, et in plan[k]:
            stores[k].write([_data("v", users, [e * 7 for e in et], et)])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = stores[0].reader("v", KEYS, FIELDS, with_time=True).read([USERS])
    assert got[3] == [ref.best[u][0][0] if u in ref.best else None for u in USERS]
    assert got[0] == [t * 7 if t is not None else None for t in got[3]]
    for s in stores:
        s.close()


def test_a_flushed_script_cache_loads_the_script_again(redis_url):
    """The push calls EVALSHA directly: after SCRIPT FLUSH (a restarted server) the next write loads it again."""
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="fl")
    st.write([_data("v", [1], [1], [10])])
    st.r.script_flush()
    assert st.write([_data("v", [1, 2], [2, 3], [20, 5])]) == {"v": 2}
    assert st.reader("v", KEYS, FIELDS).read([[1, 2]])[0] == [2, 3]
    st.close()


def test_keys_a_scan_returns_twice_count_once(redis_url, monkeypatch):
    """SCAN may return a key more than once (while Redis rehashes): stats, samples and drops count each row once."""
    from roost.features.online_stores.redis import RedisOnlineStore

    st = RedisOnlineStore(fresh_redis(redis_url), prefix="dup")
    st.write([_data("v", list(range(10)), list(range(10)), list(range(10)))])
    scan_iter = st.r.scan_iter

    def twice(*a, **kw):
        for k in scan_iter(*a, **kw):
            yield k
            yield k

    monkeypatch.setattr(st.r, "scan_iter", twice)
    assert st.stats("v") == {"rows": 10, "newest_event": 9}
    some = st.sample("v", 4)
    assert len({x["user_id"] for x in some}) == len(some) == 4
    assert sorted(x["user_id"] for x in st.sample("v", 100)) == list(range(10))
    st.drop_view("v")
    assert st.stats("v") is None
    st.close()
