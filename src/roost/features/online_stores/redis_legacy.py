"""The Redis store's legacy hash layout (before rows-json-1): still read, dropped, and migrated on the first write.

Legacy layout: hash `<prefix>:<keys>:<values>` per entity with fields `view:field`, `view:__et`, `view:__ct` (values
as text), the same view index (members: those hash keys) and a stored definition without a "layout".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from roost.features.online_stores.base import MIN_I64, ViewReader, decode

if TYPE_CHECKING:
    from roost.features.online_stores.redis import RedisOnlineStore

__all__ = ["is_legacy", "LegacyReader", "legacy_rows", "queue_legacy_drop", "legacy_sample"]


def is_legacy(stored: Any) -> bool:
    """True when a stored definition (bytes/str from the views meta hash) is of the legacy hash layout."""
    if stored is None:
        return False
    return "layout" not in json.loads(stored)


def text(raw: object) -> str:
    """A Redis reply (bytes without decode_responses) as str."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def time_of(raw: Any) -> int | None:
    """A stored __et/__ct as microseconds; the MIN_I64 placeholder of an absent time reads as None."""
    t = decode(raw, "int64")
    return None if t is None or t == MIN_I64 else int(t)


class LegacyReader(ViewReader):
    """HMGET per entity (one pipeline) while the view is in the legacy layout; the row layout once it is migrated."""

    def __init__(
        self, store: RedisOnlineStore, view: str, keys: list[str], fields: dict[str, str], times: list[str]
    ) -> None:
        self.store, self.view, self.keys, self.fields, self.times = store, view, keys, fields, times
        self.names = [f"{view}:{f}" for f in [*fields, *times]]
        self.dtypes = list(fields.values()) + ["__time"] * len(times)
        self.moved: ViewReader | None = None

    def read(self, key_cols: list[list[Any]]) -> list[list[Any]]:
        """One list per field aligned with the requested keys (None where absent)."""
        if self.moved is not None:
            return self.moved.read(key_cols)
        st = self.store
        pipe = st.r.pipeline(transaction=True)  # the definition with the values: a migration is seen, not half-read
        pipe.hget(st.meta_key(), self.view)
        for t in zip(*key_cols):
            pipe.hmget(st.hkey(self.keys, t), self.names)
        stored, *rows = pipe.execute()
        if not is_legacy(stored):  # migrated (or redefined) since this reader was made: read the row layout
            self.moved = st.row_reader(self.view, self.keys, self.fields, stored, self.times)
            return self.moved.read(key_cols)
        return [
            [time_of(r[i]) if dt == "__time" else decode(r[i], dt) for r in rows] for i, dt in enumerate(self.dtypes)
        ]


def legacy_rows(store: RedisOnlineStore, view: str, stored: Any) -> tuple[list[str], list[int], list[int], list[Any]]:
    """Every entity of a legacy view as (row keys, event times, created times, field value lists)."""
    schema = json.loads(stored)
    fields: dict[str, str] = dict(schema["fields"])
    hkeys = [text(h) for h in store.r.zrange(store.idx_key(view), 0, -1)]
    names = [f"{view}:{f}" for f in [*fields, "__et", "__ct"]]
    pipe = store.r.pipeline(transaction=False)
    for hk in hkeys:
        pipe.hmget(hk, names)
    got = pipe.execute()
    nf = len(fields)
    head = len(store.prefix) + 1
    rkeys = [store.row_key_of(view, hk[head:]) for hk in hkeys]
    et = [MIN_I64 if r[nf] is None else int(r[nf]) for r in got]
    ct = [MIN_I64 if r[nf + 1] is None else int(r[nf + 1]) for r in got]
    cols = [[decode(r[j], dt) for r in got] for j, dt in enumerate(fields.values())]
    return rkeys, et, ct, cols


def queue_legacy_drop(store: RedisOnlineStore, pipe: Any, view: str, stored: Any) -> None:
    """Queue deletion of a legacy view's fields on every entity hash that has them, its index and definition."""
    fields = [f"{view}:__et", f"{view}:__ct"] + [f"{view}:{f}" for f in json.loads(stored)["fields"]]
    for hk in store.r.zrange(store.idx_key(view), 0, -1):
        pipe.hdel(hk, *fields)
    pipe.delete(store.idx_key(view), store.tops_key(view))
    pipe.hdel(store.meta_key(), view)


def legacy_sample(store: RedisOnlineStore, view: str, schema: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The `n` entities with the newest event times of a legacy view."""
    keys, fields = list(schema["keys"]), dict(schema["fields"])
    hkeys = [text(h) for h in store.r.zrevrange(store.idx_key(view), 0, max(0, int(n) - 1))]
    pipe = store.r.pipeline(transaction=False)
    for hk in hkeys:
        pipe.hmget(hk, [f"{view}:{f}" for f in [*fields, "__et"]])
    out = []
    head = f"{store.prefix}:{','.join(keys)}:"
    for hk, vals in zip(hkeys, pipe.execute()):
        row = store.ident_row(schema, hk[len(head) :] if hk.startswith(head) else hk)
        row.update({f: decode(v, dt) for (f, dt), v in zip(fields.items(), vals)})
        row["__et"] = time_of(vals[-1])
        out.append(row)
    return out
