"""Redis online store: one hash per entity (fields 'view:field'), a sorted-set index per view, MULTI/EXEC writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.features.online_stores.base import MIN_I64, OnlineStore, ViewData, ViewReader, decode

if TYPE_CHECKING:
    from redis.typing import EncodableT

SCAN = 5000
# One view's upserts in one atomic script call (no MULTI, no read round trip). The stored event times come from the
# view's index in one ZMSCORE for every row (the index's score is the entity's __et, written together); the stored
# created time is read only at an equal event time. A row not older than the stored one is written with one HSET
# (null fields deleted), then one variadic ZADD indexes every written row: about one command per row (it was three:
# HMGET, HSET, ZADD per row). The rows come as one JSON document (hash keys, times and values as text; redis-py
# packs one argument, not several per row); the hash keys are computed by the client as `hkey` does, so the script
# names keys it was not given in KEYS (fine on one server; Redis Cluster is not supported by this store). Times
# are microseconds, exact as doubles (Lua numbers, sorted-set scores) below 2**53 (year 2255); MIN_I64, a power of
# two, is exact too. The stored definition is checked in the same call (-1 and nothing written when it differs),
# so a push is one round trip. Rows of one entity in one call are compared with each other as they are written.
# Needs Redis >= 6.2 (ZMSCORE).
UPSERT = """
local view, idx, meta, schema = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HGET', meta, view)
if cur and cur ~= schema then return -1 end
local p = cjson.decode(ARGV[5])
local nf, vals, ets, cts, hks, null = #p.names, p.values, p.et, p.ct, p.keys, cjson.null
local names = {}
for j = 1, nf do names[j] = view .. ':' .. p.names[j] end
local etk, ctk = view .. ':__et', view .. ':__ct'
local olds = {}
if cur then
  for lo = 1, #hks, 4000 do
    local got = redis.call('ZMSCORE', idx, unpack(hks, lo, math.min(lo + 3999, #hks)))
    for k = 1, #got do olds[lo + k - 1] = got[k] end
  end
end
local n, z, wet, wct = 0, {}, {}, {}
for i, hk in ipairs(hks) do
  local et, ct, old = ets[i], cts[i], olds[i]
  local older = false
  local net = tonumber(et)
  if wet[hk] then  -- an entity written earlier in this call: compare with that row
    older = net < wet[hk] or (net == wet[hk] and tonumber(ct) < wct[hk])
  elseif old then
    local oet = tonumber(old)
    older = net < oet
    if net == oet then
      older = tonumber(ct) < tonumber(redis.call('HGET', hk, ctk) or '-9223372036854775808')
    end
  end
  if not older then
    local set, ns, del = {etk, et, ctk, ct}, 4, nil
    for j = 1, nf do
      local v = vals[j][i]
      if v == null then
        if del then del[#del + 1] = names[j] else del = {names[j]} end
      else
        set[ns + 1] = names[j]; set[ns + 2] = v; ns = ns + 2
      end
    end
    redis.call('HSET', hk, unpack(set))
    if del then redis.call('HDEL', hk, unpack(del)) end
    z[2 * n + 1] = et; z[2 * n + 2] = hk
    wet[hk], wct[hk] = net, tonumber(ct)
    n = n + 1
  end
end
for lo = 1, #z, 4000 do redis.call('ZADD', idx, unpack(z, lo, math.min(lo + 3999, #z))) end
redis.call('HSET', meta, view, schema)
return n
"""


__all__ = ["RedisOnlineStore"]


def _text(raw: object) -> str:
    """A Redis reply (bytes without decode_responses) as str."""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _enc(value: Any, dtype: str) -> str:
    """Encode a value as the string Redis stores (floats with repr, so they round-trip exactly)."""
    if dtype == "bool":
        return "1" if value else "0"
    if dtype in ("float64", "float32"):
        return repr(float(value))
    return str(value)


class RedisOnlineStore(OnlineStore):
    """Online store in Redis: hash `<prefix>:<keys>:<values>` holds each view's fields of one entity."""

    per_project = True

    @classmethod
    def from_url(cls, url: str, project: str) -> RedisOnlineStore:
        """Open `redis://`, `rediss://` or `unix://` with keys namespaced by the project."""
        return cls(url, prefix=f"roost:{project}")

    def __init__(self, url: str, prefix: str = "roost") -> None:
        try:
            import redis
        except ImportError as exc:
            raise RoostError(
                "the Redis online store needs the redis package",
                hint="pip install 'roost[redis]' (or pip install redis)",
            ) from exc
        self.url = url
        self.prefix = prefix
        self._script: Any = None
        self.r = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            self.r.ping()
        except redis.RedisError as exc:
            from roost.errors import redact_url

            raise RoostError(
                f"cannot reach the Redis online store at {redact_url(url)}: {exc}",
                hint="start redis-server, or set online_store in roost.yaml",
            ) from exc

    def hkey(self, keys: list[str], values: tuple[Any, ...]) -> str:
        """The hash key of one entity."""
        if len(values) == 1:
            return f"{self.prefix}:{keys[0]}:{values[0]}"
        esc = (str(v).replace("\\", "\\\\").replace("|", "\\|") for v in values)  # "a|b","c" != "a","b|c"
        return f"{self.prefix}:{','.join(keys)}:" + "|".join(esc)

    def _idx(self, view: str) -> str:
        return f"{self.prefix}:__idx:{view}"

    def _meta(self) -> str:
        return f"{self.prefix}:__views"

    def write(self, views: list[ViewData]) -> dict[str, int]:
        """Read stored times, then queue all upserts and expiries in one MULTI/EXEC transaction."""
        if len(views) == 1 and views[0].expire_before is None:
            v = views[0]
            n = self._upsert(v, json.dumps({"keys": v.keys, "fields": v.fields}))
            if n >= 0:  # -1: the stored definition differs (the script wrote nothing): the general path below
                return {v.name: n}
        pipe = self.r.pipeline(transaction=True)
        written: dict[str, int] = {}
        for v in views:
            keys = list(v.keys)
            schema = json.dumps({"keys": v.keys, "fields": v.fields})
            old = self.r.hget(self._meta(), v.name)
            if old is not None and _text(old) != schema:
                self._queue_drop(pipe, v.name)
            cols = v.columns()
            nk, nf = len(keys), len(v.fields)
            ids = list(zip(*cols[:nk]))
            hkeys = [self.hkey(keys, t) for t in ids]
            stored = self._stored_times(v.name, hkeys) if old is not None and _text(old) == schema else {}
            fnames = list(v.fields.items())
            n = 0
            fresh: dict[str, int] = {}
            for i, hk in enumerate(hkeys):
                et, ct = cols[nk + nf][i], cols[nk + nf + 1][i]
                new_t = (MIN_I64 if et is None else et, MIN_I64 if ct is None else ct)
                if hk in stored and new_t < stored[hk]:
                    continue
                mapping: dict[EncodableT, EncodableT] = {
                    f"{v.name}:__et": str(new_t[0]),
                    f"{v.name}:__ct": str(new_t[1]),
                }
                nulls = []
                for j, (f, dt) in enumerate(fnames):
                    val = cols[nk + j][i]
                    if val is None or val != val:  # NaN means missing, as in SQLite
                        nulls.append(f"{v.name}:{f}")
                    else:
                        mapping[f"{v.name}:{f}"] = _enc(val, dt)
                pipe.hset(hk, mapping=mapping)
                if nulls:
                    pipe.hdel(hk, *nulls)
                pipe.zadd(self._idx(v.name), {hk: float("-inf") if et is None else float(et)})
                fresh[hk] = MIN_I64 if et is None else et
                n += 1
            written[v.name] = n
            if v.expire_before is not None:
                fields = [f"{v.name}:{f}" for f in [*v.fields, "__et", "__ct"]]
                for raw in self.r.zrangebyscore(self._idx(v.name), "-inf", f"({v.expire_before}"):
                    hk = _text(raw)
                    if fresh.get(hk, MIN_I64) < v.expire_before:  # not refreshed by this run
                        pipe.hdel(hk, *fields)
                pipe.zremrangebyscore(self._idx(v.name), "-inf", f"({v.expire_before}")
            pipe.hset(self._meta(), v.name, schema)
        pipe.execute()
        return written

    def _upsert(self, v: ViewData, schema: str) -> int:
        """One view's upserts (no expiry) in one atomic script call; returns rows written, -1 if the schema changed."""
        import orjson

        if self._script is None:
            self._script = self.r.register_script(UPSERT)
        keys = list(v.keys)
        t = v.table
        if len(keys) == 1:
            head = f"{self.prefix}:{keys[0]}:"
            hkeys = [head + str(x) for x in t.column(keys[0]).to_pylist()]
        else:
            hkeys = [self.hkey(keys, x) for x in zip(*(t.column(k).to_pylist() for k in keys))]
        doc = {
            "names": list(v.fields),
            "keys": hkeys,
            "et": _times(t.column("__et")),
            "ct": _times(t.column("__ct")),
            "values": [_texts(t.column(f), dt) for f, dt in v.fields.items()],
        }
        return int(self._script(args=[v.name, self._idx(v.name), self._meta(), schema, orjson.dumps(doc)]))

    def _stored_times(self, view: str, hkeys: list[str]) -> dict[str, tuple[int, int]]:
        """(event, created) microseconds already stored for these entities."""
        out: dict[str, tuple[int, int]] = {}
        for lo in range(0, len(hkeys), SCAN):
            part = hkeys[lo : lo + SCAN]
            pipe = self.r.pipeline(transaction=False)
            for hk in part:
                pipe.hmget(hk, f"{view}:__et", f"{view}:__ct")
            for hk, (et, ct) in zip(part, pipe.execute()):
                if et is not None:
                    out[hk] = (int(et), int(ct) if ct is not None else MIN_I64)
        return out

    def _queue_drop(self, pipe: Any, view: str) -> None:
        """Queue deletion of every field of `view` on every entity that has it."""
        old = self.r.hget(self._meta(), view)
        fields = [f"{view}:__et", f"{view}:__ct"]
        if old is not None:
            fields += [f"{view}:{f}" for f in json.loads(old)["fields"]]
        for hk in self.r.zrange(self._idx(view), 0, -1):
            pipe.hdel(hk, *fields)
        pipe.delete(self._idx(view))
        pipe.hdel(self._meta(), view)

    def reader(
        self,
        view: str,
        keys: dict[str, str],
        fields: dict[str, str],
        with_time: bool = False,
        with_created: bool = False,
    ) -> ViewReader:
        """A pipelined HMGET reader for `fields` of `view` (then __et / __ct when asked)."""
        raw = self.r.hget(self._meta(), view)
        if raw is None:
            raise RoostError(
                f"view {view!r} has not been materialised into {self.url}", hint="run `roost features materialize`"
            )
        schema = json.loads(raw)
        if any(f not in schema["fields"] for f in fields) or list(schema["keys"]) != list(keys):
            raise RoostError(
                f"online store {self.url} holds an older definition of view {view!r}",
                hint="run `roost features materialize` after `roost features apply`",
            )
        times = (["__et"] if with_time else []) + (["__ct"] if with_created else [])
        dtypes = list(fields.values()) + ["__time"] * len(times)
        names = [f"{view}:{f}" for f in [*fields, *times]]
        return _RedisReader(self, list(keys), names, dtypes)

    def has_view(self, view: str) -> bool:
        """True when the view has been materialised here."""
        return bool(self.r.hexists(self._meta(), view))

    def drop_view(self, view: str) -> None:
        """Delete the view's fields from every entity hash, atomically."""
        pipe = self.r.pipeline(transaction=True)
        self._queue_drop(pipe, view)
        pipe.execute()

    def stats(self, view: str) -> dict[str, Any] | None:
        """Rows (the view's index size) and newest event time (its highest score): O(log n), no scan."""
        if not self.has_view(view):
            return None
        rows = int(str(self.r.zcard(self._idx(view))))
        top = self.r.zrevrange(self._idx(view), 0, 0, withscores=True)
        newest = float(top[0][1]) if top else None
        ok = newest is not None and newest not in (float("inf"), float("-inf"))
        return {"rows": rows, "newest_event": int(newest) if ok and newest is not None else None}

    def sample(self, view: str, n: int) -> list[dict[str, Any]]:
        """The `n` entities with the newest event times (join keys as stored in the hash key)."""
        raw = self.r.hget(self._meta(), view)
        if raw is None:
            return []
        schema = json.loads(raw)
        keys, fields = list(schema["keys"]), dict(schema["fields"])
        hkeys = [_text(h) for h in self.r.zrevrange(self._idx(view), 0, max(0, int(n) - 1))]
        pipe = self.r.pipeline(transaction=False)
        for hk in hkeys:
            pipe.hmget(hk, [f"{view}:{f}" for f in [*fields, "__et"]])
        out = []
        head = f"{self.prefix}:{','.join(keys)}:"
        for hk, vals in zip(hkeys, pipe.execute()):
            ident = hk[len(head) :] if hk.startswith(head) else hk
            row: dict[str, Any] = (
                {keys[0]: decode(ident, schema["keys"][keys[0]])} if len(keys) == 1 else {",".join(keys): ident}
            )
            row.update({f: decode(v, dt) for (f, dt), v in zip(fields.items(), vals)})
            row["__et"] = _time(vals[-1])
            out.append(row)
        return out

    def close(self) -> None:
        """Close the connection pool."""
        self.r.close()


class _RedisReader(ViewReader):
    """HMGET per entity, all in one pipeline round trip."""

    def __init__(self, store: RedisOnlineStore, keys: list[str], names: list[str], dtypes: list[str]) -> None:
        self.store, self.keys, self.names, self.dtypes = store, keys, names, dtypes

    def read(self, key_cols: list[list[Any]]) -> list[list[Any]]:
        """One list per field aligned with the requested keys (None where absent)."""
        st = self.store
        ids = list(zip(*key_cols))
        if len(ids) == 1:
            rows = [st.r.hmget(st.hkey(self.keys, ids[0]), self.names)]
        else:
            pipe = st.r.pipeline(transaction=False)
            for t in ids:
                pipe.hmget(st.hkey(self.keys, t), self.names)
            rows = pipe.execute()
        return [[_time(r[i]) if dt == "__time" else decode(r[i], dt) for r in rows] for i, dt in enumerate(self.dtypes)]


def _time(raw: Any) -> int | None:
    """A stored __et/__ct as microseconds; the MIN_I64 placeholder of an absent time reads as None."""
    t = decode(raw, "int64")
    return None if t is None or t == MIN_I64 else int(t)


def _times(col: Any) -> list[str]:
    """A time column as text microseconds (MIN_I64 for null: older than any time)."""
    import numpy as np
    import pyarrow as pa

    if col.null_count == len(col):  # no created times: the usual push
        return [str(MIN_I64)] * len(col)
    if col.null_count == 0 and col.type == pa.timestamp("us", tz="UTC"):  # a push's event times: no compute call
        return [str(x) for x in np.asarray(col.to_numpy()).view(np.int64).tolist()]
    return [str(x) for x in col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).fill_null(MIN_I64).to_pylist()]


def _texts(col: Any, dtype: str) -> list[str | None]:
    """A field column as the text Redis stores (`_enc`'s encoding: floats round-trip exactly), None for null/NaN.

    Python's own str/repr over the column's values: a small write's columns cost less this way than through
    Arrow casts (each a compute call)."""
    import pyarrow as pa

    if dtype == "timestamp":
        col = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    values = col.to_pylist()
    if dtype in ("float64", "float32"):  # NaN means missing, as in SQLite
        return [None if v is None or v != v else repr(float(v)) for v in values]
    if dtype == "bool":
        return [None if v is None else "1" if v else "0" for v in values]
    return [None if v is None else v if isinstance(v, str) else str(v) for v in values]
