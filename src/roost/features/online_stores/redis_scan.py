"""The Redis row layout's admin reads and deletes: a view's rows found by SCAN MATCH over its key prefix.

Nothing indexes a view's rows on the write path (`redis_rows`), so expiry, stats, samples and drops walk the keys
`<prefix>:@<view>:*` (view names are identifiers: no other view's keys match). They read the keyspace in chunks of
`COUNT` keys, off the push path: `materialize` calls expiry and stats, the UI calls `sample`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roost.features.online_stores import redis_rows as rows
from roost.features.online_stores.base import MIN_I64

if TYPE_CHECKING:
    from roost.features.online_stores.redis import RedisOnlineStore

__all__ = ["pattern", "row_keys_of", "expire", "count", "sample_rows", "newest", "COUNT"]

COUNT = 2000  # keys a SCAN step looks at (one expiry script call: ~1 ms of the server's time)
_GLOB = str.maketrans({c: "\\" + c for c in "\\*?[]^"})


def pattern(store: RedisOnlineStore, view: str) -> str:
    """The SCAN MATCH pattern of every row key of `view` (glob characters of the prefix escaped)."""
    return f"{store.prefix}:@{view}:".translate(_GLOB) + "*"


def row_keys_of(store: RedisOnlineStore, view: str) -> list[bytes]:
    """Every row key of `view` once (both row layouts: their keys are the same; SCAN may return a key twice)."""
    return list(dict.fromkeys(store.r.scan_iter(match=pattern(store, view), count=COUNT)))


def count(store: RedisOnlineStore, view: str) -> int:
    """How many rows `view` holds (the keys are held in a set: SCAN returns a key twice when Redis rehashes)."""
    return len(set(store.r.scan_iter(match=pattern(store, view), count=COUNT)))


def expire(store: RedisOnlineStore, view: str, before: int) -> int:
    """Delete the rows of `view` whose event time is before `before` (µs); returns how many. Each chunk is one
    atomic script call that reads the rows it deletes, so a row a concurrent write made newer stays."""
    if store.expire_script is None:
        store.expire_script = store.r.register_script(rows.EXPIRE)
    cursor, gone, pat = 0, 0, pattern(store, view)
    while True:
        nxt, n = store.expire_script(args=[cursor, pat, int(before), COUNT])
        gone += int(n)
        cursor = int(nxt)
        if cursor == 0:
            return gone


def sample_rows(store: RedisOnlineStore, view: str, schema: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Up to `n` rows of `view` in SCAN order (a bounded read: it stops at `n` rows), join keys decoded."""
    seen: dict[str, None] = {}  # (an ordered set: SCAN may return a key twice)
    if n > 0:
        for k in store.r.scan_iter(match=pattern(store, view), count=COUNT):
            seen[k.decode() if isinstance(k, bytes) else str(k)] = None
            if len(seen) >= n:
                break
    found = list(seen)
    return rows_at(store, view, schema, found, store.r.mget(found) if found else [])


def rows_at(
    store: RedisOnlineStore, view: str, schema: dict[str, Any], found: list[str], raw: list[Any]
) -> list[dict[str, Any]]:
    """The sample rows of the row keys `found`, whose stored values are `raw` (None: a row deleted since the keys were
    listed, left out): the entity's key columns, its fields and `__et` (its event time)."""
    keys, fields = list(schema["keys"]), dict(schema["fields"])
    found = [k for k, b in zip(found, raw) if b is not None]
    got = rows.decode_rows([b for b in raw if b is not None], list(range(2, 2 + len(fields))), [0])
    head = f"{store.prefix}:@{view}:{','.join(keys)}:"
    out = []
    for i, k in enumerate(found):
        row = store.ident_row(schema, k[len(head) :] if k.startswith(head) else k)
        row.update({f: got[j][i] for j, f in enumerate(fields)})
        row["__et"] = got[-1][i]
        out.append(row)
    return out


def newest(store: RedisOnlineStore, view: str) -> int | None:
    """The newest event time written to `view` (None: none, or only rows without event time). Exact while the view
    holds rows: the row that set it can only be replaced by a row at least as new, and expiry removes it only with
    every older row."""
    raw = store.r.get(store.tops_key(view))
    if raw is None:
        return None
    t = int(raw)
    return None if t == MIN_I64 else t
