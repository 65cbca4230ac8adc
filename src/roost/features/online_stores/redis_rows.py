"""The Redis store's row layout: one string key per (view, entity) holding the entity's whole row of the view.

A row is one JSON array `[event time, created time, field 1, ..., field n]` (microseconds; MIN_I64 for a missing
created time; fields in the view's definition order, null for a missing value). One key per row lets one script
call write every newer row of a push with one MSET (the per-row HSET of the hash layout was most of a push's
server time) and lets a read fetch any number of entities with one MGET.

The upsert script compares times on the server, so concurrent writers are safe and a write is atomic (a crash
leaves the old row or the new one, never part of either): the stored event times come from the view's index (a
sorted set, score = event time) in one ZMSCORE, the stored created time is read only at an equal event time, and
nothing is read when the write's oldest row is newer than the index's top score (events arriving in order); rows
of one entity within one call are compared with each other as they are written (the later row wins at equal
times). Times are exact as doubles (Lua numbers, scores) below 2**53 µs (year 2255); MIN_I64 is a power of two.
The rows come as one binary argument (the rows' JSON texts back to back) and one small JSON document (row keys,
times, row lengths): redis-py packs two arguments, not several per row. Keys not passed in KEYS are fine on one
server; Redis Cluster is not supported. Needs Redis >= 6.2 (ZMSCORE).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from roost.features.online_stores.base import MIN_I64

LAYOUT = "rows-json-1"  # the stored definition names it: a definition without it is the legacy hash layout

# ARGV: view, index key, views meta key, definition, expire-before µs ('' for none), document, rows.
# Returns the rows written, or -1 (nothing written) when the stored definition differs.
UPSERT = """
local view, idx, meta, schema, exp = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local cur = redis.call('HGET', meta, view)
if cur and cur ~= schema then return -1 end
local p = cjson.decode(ARGV[6])
local rows, ks, ets, cts, lens = ARGV[7], p.k, p.et, p.ct, p.n  -- no ct: no row has a created time
local olds, MIN = {}, -9223372036854775808  -- MIN: a missing time (-2**63, exact as a double)
local lookup = cur and true or false
if lookup then  -- no lookup when every row is newer than the newest stored one (events arriving in time order)
  local top = redis.call('ZREVRANGE', idx, 0, 0, 'WITHSCORES')
  if top[2] then
    local newest, oldest = tonumber(top[2]), math.huge
    if newest == -math.huge then newest = MIN end
    for i = 1, #ets do if ets[i] < oldest then oldest = ets[i] end end
    lookup = oldest <= newest
  else
    lookup = false
  end
end
if lookup then
  for lo = 1, #ks, 4000 do
    local got = redis.call('ZMSCORE', idx, unpack(ks, lo, math.min(lo + 3999, #ks)))
    for j = 1, #got do olds[lo + j - 1] = got[j] end
  end
end
local m, z, nm, wet, wct, pos = {}, {}, 0, {}, {}, 1
for i = 1, #ks do
  local k, et, ct = ks[i], ets[i], cts and cts[i] or MIN
  local stop = pos + lens[i]
  local older, w = false, wet[k]
  if w then  -- an entity written earlier in this call: compare with that row
    older = et < w or (et == w and ct < wct[k])
  elseif olds[i] then
    local oet = tonumber(olds[i])
    if oet == -math.huge then oet = MIN end  -- an entity without event time is indexed at -inf
    older = et < oet
    if et == oet then
      local row = redis.call('GET', k)
      older = row and ct < cjson.decode(row)[2] or false
    end
  end
  if not older then
    m[nm + 1] = k; m[nm + 2] = string.sub(rows, pos, stop - 1)
    if et == MIN then z[nm + 1] = '-inf' else z[nm + 1] = et end
    z[nm + 2] = k
    nm = nm + 2
    wet[k], wct[k] = et, ct
  end
  pos = stop
end
for lo = 1, nm, 4000 do
  local hi = math.min(lo + 3999, nm)
  redis.call('MSET', unpack(m, lo, hi))
  redis.call('ZADD', idx, unpack(z, lo, hi))
end
if exp ~= '' then  -- expiry: rows whose event time is before the mark, after this write
  local gone = redis.call('ZRANGEBYSCORE', idx, '-inf', '(' .. exp)
  for lo = 1, #gone, 4000 do redis.call('DEL', unpack(gone, lo, math.min(lo + 3999, #gone))) end
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. exp)
end
redis.call('HSET', meta, view, schema)
return nm / 2
"""


__all__ = ["LAYOUT", "UPSERT", "definition", "encode", "table_lists", "decode_rows"]


def definition(keys: dict[str, str], fields: dict[str, str]) -> str:
    """The stored definition of a view in this layout (the script writes nothing when the stored one differs)."""
    return _definition(tuple(keys.items()), tuple(fields.items()))


@functools.lru_cache(maxsize=256)
def _definition(keys: tuple[tuple[str, str], ...], fields: tuple[tuple[str, str], ...]) -> str:
    return json.dumps({"keys": dict(keys), "fields": dict(fields), "layout": LAYOUT})


def table_lists(cols: list[list[Any]], nk: int) -> tuple[list[Any], list[int], list[int], list[list[Any]]]:
    """`ViewData.columns()` (keys, fields, __et, __ct) as join key lists, event times and created times (MIN_I64
    for null) and field value lists."""
    et, ct = cols[-2], cols[-1]
    if None in et:
        et = [MIN_I64 if t is None else t for t in et]
    if None in ct:
        ct = [MIN_I64 if t is None else t for t in ct]
    return cols[:nk], et, ct, cols[nk:-2]


def encode(
    rkeys: list[str], et: list[int], ct: list[int], cols: list[list[Any]], dtypes: list[str]
) -> tuple[bytes, bytes]:
    """The script's document and rows arguments: each row's JSON text back to back (NaN as null)."""
    import orjson

    dumps = orjson.dumps
    inf = float("inf")
    if any(dt in ("float64", "float32") and (inf in c or -inf in c) for c, dt in zip(cols, dtypes)):
        # orjson writes infinities as null: Python's json keeps them (Infinity), NaN still as null (missing)
        rows = [json.dumps([None if v != v else v for v in r]).encode() for r in zip(et, ct, *cols)]
    else:
        rows = [dumps(r) for r in zip(et, ct, *cols)]  # orjson writes NaN as null: NaN means missing, as in SQLite
    head = {"k": rkeys, "et": et, "n": [len(r) for r in rows]}
    if ct.count(MIN_I64) != len(ct):  # (no created times, the usual push: 100 numbers fewer for the script to parse)
        head["ct"] = ct
    doc = dumps(head)
    return doc, b"".join(rows)


def decode_rows(raw: list[Any], picks: list[int], times: list[int]) -> list[list[Any]]:
    """MGET replies as one list per requested field (`picks`: field positions), then the requested times."""
    import orjson

    rows: list[Any] = []
    for b in raw:
        if b is None:
            rows.append(None)
            continue
        try:
            rows.append(orjson.loads(b))
        except orjson.JSONDecodeError:  # a row with an infinite float (Python's json wrote Infinity)
            rows.append(json.loads(b))
    out = [[None if r is None or j < 0 else r[j] for r in rows] for j in picks]  # -1: a field not stored
    for j in times:  # 0: event time, 1: created time (MIN_I64: none)
        out.append([None if r is None or r[j] == MIN_I64 else r[j] for r in rows])
    return out
