"""The Redis store's row layout: one string key per (view, entity) holding the entity's whole row of the view.

A row is one JSON array `[event time, created time, field 1, ..., field n]` (microseconds; MIN_I64 for a missing
created time; fields in the view's definition order, null for a missing value). One key per row lets one script
call write every newer row of a push with one MSET and lets a read fetch any number of entities with one MGET.

The upsert script compares times on the server, so concurrent writers are safe and a write is atomic (a crash
leaves the old row or the new one, never part of either). Nothing is indexed on the write path: each view keeps
one number, its newest event time written (`<prefix>:__newest:<view>`, set by every write that wrote a row, so a
redefinition's transaction can WATCH it). When the write's oldest
row is newer than that (events arriving in order) nothing is read; else one MGET fetches the stored rows of the
write's entities and their event (and created) times are read from the rows' first two numbers. Rows of one
entity within one call are compared with each other as they are written (the later row wins at equal times).
Times are exact as doubles (Lua numbers) below 2**53 µs (year 2255); MIN_I64 is a power of two.

Expiry, `stats`, `sample` and drops find a view's rows by SCAN MATCH over its key prefix (`<prefix>:@<view>:`;
view names are identifiers, so no other view's keys match): admin calls that read the keyspace, off the write
path. Expiry (`materialize`'s ttl) runs after the upsert in chunks, each one script call that deletes the rows of
its keys still older than the mark (a row a concurrent push made newer stays).

The previous row layout (rows-json-1: the same keys and rows plus a sorted-set index per view, score = event
time) is converted by the first write in the same script call: the index's top score becomes the view's newest
event time and the index is unlinked; until then its stats, samples and drops use the index as before.

The rows come as one binary argument (the rows' JSON texts back to back) and one small JSON document (row keys,
times, row lengths): redis-py packs two arguments in ~15 µs, 200 in ~200 µs. Keys not passed in KEYS are fine on
one server; Redis Cluster is not supported. Needs Redis >= 6.2.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from roost.features.online_stores.base import MIN_I64

LAYOUT = "rows-json-2"  # the stored definition names it: a definition without a layout is the legacy hash layout
INDEXED = "rows-json-1"  # the same rows plus a sorted-set index per view: converted by the first write

# ARGV: view, views meta key, the view's newest-time key, definition, the rows-json-1 definition of the same view, that
# layout's index key, document, rows. Returns the rows written, or -1 (nothing written) when the stored definition
# differs.
UPSERT = """
local view, meta, tops, schema, indexed, idx = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local MIN = -9223372036854775808  -- a missing time (-2**63, exact as a double)
local cur = redis.call('HGET', meta, view)
local top
if cur and cur ~= schema then
  if cur ~= indexed then return -1 end
  local t = redis.call('ZREVRANGE', idx, 0, 0, 'WITHSCORES')  -- rows-json-1: its index's top is the newest time
  if t[2] then
    top = tonumber(t[2])
    if top == -math.huge then top = MIN end  -- (rows without event time were indexed at -inf)
    redis.call('SET', tops, string.format('%.0f', top))
  end
  redis.call('UNLINK', idx)
  redis.call('HSET', meta, view, schema)
else
  local t = redis.call('GET', tops)
  if t then top = tonumber(t) end
end
local p = cjson.decode(ARGV[7])
local rows, ks, ets, cts, lens = ARGV[8], p.k, p.et, p.ct, p.n  -- no ct: no row has a created time
local olds = {}
local lookup = cur and true or false  -- no definition: no stored rows
if lookup and top then  -- nothing to read when every row is newer than the newest stored one (in time order)
  local oldest = math.huge
  for i = 1, #ets do if ets[i] < oldest then oldest = ets[i] end end
  lookup = oldest <= top
end
if lookup then
  for lo = 1, #ks, 4000 do
    local got = redis.call('MGET', unpack(ks, lo, math.min(lo + 3999, #ks)))
    for j = 1, #got do olds[lo + j - 1] = got[j] end
  end
end
local m, nm, wet, wct, pos, hi = {}, 0, {}, {}, 1, top or MIN
for i = 1, #ks do
  local k, et, ct = ks[i], ets[i], cts and cts[i] or MIN
  local stop = pos + lens[i]
  local older, w = false, wet[k]
  if w then  -- an entity written earlier in this call: compare with that row
    older = et < w or (et == w and ct < wct[k])
  elseif olds[i] then  -- the stored row's first two numbers: its event and created times
    local a, b = string.match(olds[i], '^%[%s*(%-?%d+)%s*,%s*(%-?%d+)')
    local oet, oct = tonumber(a), tonumber(b)
    older = et < oet or (et == oet and ct < oct)
  end
  if not older then
    m[nm + 1] = k; m[nm + 2] = string.sub(rows, pos, stop - 1)
    nm = nm + 2
    wet[k], wct[k] = et, ct
    if et > hi then hi = et end
  end
  pos = stop
end
for lo = 1, nm, 4000 do redis.call('MSET', unpack(m, lo, math.min(lo + 3999, nm))) end
if nm > 0 then redis.call('SET', tops, string.format('%.0f', hi)) end  -- (hi: at least top)
if not cur then redis.call('HSET', meta, view, schema) end
return nm / 2
"""

# ARGV: SCAN cursor, key pattern, expire-before µs, SCAN count. Deletes the matched rows whose event time is before
# the mark (a row without event time: MIN); returns {next cursor, rows deleted}.
EXPIRE = """
local got = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[4])
local ks, gone, cut = got[2], {}, tonumber(ARGV[3])
if #ks > 0 then
  local rows = redis.call('MGET', unpack(ks))
  for i = 1, #ks do
    local row = rows[i]
    if row and tonumber(string.match(row, '^%[%s*(%-?%d+)')) < cut then gone[#gone + 1] = ks[i] end
  end
  if #gone > 0 then redis.call('DEL', unpack(gone)) end
end
return {got[1], #gone}
"""


__all__ = [
    "LAYOUT",
    "INDEXED",
    "UPSERT",
    "EXPIRE",
    "definition",
    "indexed_definition",
    "layout_of",
    "encode",
    "table_lists",
    "decode_rows",
]


def definition(keys: dict[str, str], fields: dict[str, str], layout: str = LAYOUT) -> str:
    """The stored definition of a view in this layout (the script writes nothing when the stored one differs)."""
    return _definition(tuple(keys.items()), tuple(fields.items()), layout)


def indexed_definition(keys: dict[str, str], fields: dict[str, str]) -> str:
    """The same view's definition as the rows-json-1 layout stored it (the script converts such a view)."""
    return _definition(tuple(keys.items()), tuple(fields.items()), INDEXED)


def layout_of(stored: Any) -> str | None:
    """The layout a stored definition names (None: the legacy hash layout)."""
    got = json.loads(stored).get("layout")
    return None if got is None else str(got)


@functools.lru_cache(maxsize=256)
def _definition(keys: tuple[tuple[str, str], ...], fields: tuple[tuple[str, str], ...], layout: str) -> str:
    return json.dumps({"keys": dict(keys), "fields": dict(fields), "layout": layout})


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
        rows = list(map(dumps, zip(et, ct, *cols)))  # orjson writes NaN as null: NaN means missing, as in SQLite
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
