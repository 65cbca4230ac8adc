"""The Redis store's row layout: one string key per (view, entity) holding the entity's whole row of the view.

A row is one JSON array `[event time, created time, field 1, ..., field n]` (microseconds; MIN_I64 for a missing
created time; fields in the view's definition order, null for a missing value). One key per row lets one script
call write every newer row of a push with one MSET and lets a read fetch any number of entities with one MGET.

The upsert script compares times on the server, so concurrent writers are safe and a write is atomic (a crash
leaves the old row or the new one, never part of either). Nothing is indexed on the write path: each view keeps
one number, its newest event time written (`<prefix>:__newest:<view>`, set by every write that wrote a row, so a
redefinition's transaction can WATCH it). When the write's oldest
row is newer than that (events arriving in order) nothing is read or decoded: the rows go to one MSET as they came;
else one MGET fetches the stored rows of the write's entities and their event (and created) times are read from the
rows' first two numbers. Rows of one entity within one call are reduced to its latest on the client first
(`latest_rows`: the later row wins at equal times), so the script sees each key once.
Times are exact as doubles (Lua numbers) below 2**53 µs (year 2255); MIN_I64 is a power of two.

Expiry, `stats`, `sample` and drops find a view's rows by SCAN MATCH over its key prefix (`<prefix>:@<view>:`;
view names are identifiers, so no other view's keys match): admin calls that read the keyspace, off the write
path. Expiry (`materialize`'s ttl) runs after the upsert in chunks, each one script call that deletes the rows of
its keys still older than the mark (a row a concurrent push made newer stays).

The previous row layout (rows-json-1: the same keys and rows plus a sorted-set index per view, score = event
time) is converted by the first write in the same script call: the index's top score becomes the view's newest
event time and the index is unlinked; until then its stats, samples and drops use the index as before.

The rows come as one binary argument (their JSON texts back to back) and a small JSON document of row keys and row
lengths, which the script cuts the rows out by; the in-order case decodes nothing else (the oldest and newest event
times come as two numbers), the comparing case also decodes the times document. The store packs the call with
hiredis in one C call and sends it on a pool connection (redis-py's `execute_command` costs ~10 µs more). Rows passed
as argument pairs instead (MSET straight from ARGV) saved the script ~40 µs but cost as much again in packing and
parsing ~200 arguments. Keys not passed in KEYS are fine on one server; Redis Cluster is not supported. Needs Redis
>= 6.2.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from roost.features.online_stores.base import MIN_I64

LAYOUT = "rows-json-2"  # the stored definition names it: a definition without a layout is the legacy hash layout
INDEXED = "rows-json-1"  # the same rows plus a sorted-set index per view: converted by the first write

# ARGV: view, views meta key, the view's newest-time key, definition, the rows-json-1 definition of the same view, that
# layout's index key, the rows' oldest and newest event times, their times as JSON ([event times, created times], or
# [event times] when no row has a created time: decoded only when stored rows are read), the row keys and row lengths
# as JSON ({"k": [...], "n": [...]}: one row per key, `encode` keeps the latest row per entity), and the rows' JSON
# texts back to back (row i: the next n[i] bytes). Returns the rows written, or -1 (nothing written) when the stored
# definition differs.
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
local p = cjson.decode(ARGV[10])
local rows, ks, lens, m, nm, pos, hi = ARGV[11], p.k, p.n, {}, 0, 1, top or MIN
local lookup = cur and true or false  -- no definition: no stored rows
if lookup and top then lookup = tonumber(ARGV[7]) <= top end  -- every row newer than the newest stored: no read
if not lookup then  -- every row is written: cut them out and MSET, no times decoded
  for i = 1, #ks do
    local stop = pos + lens[i]
    m[2 * i - 1] = ks[i]; m[2 * i] = string.sub(rows, pos, stop - 1)
    pos = stop
  end
  nm = 2 * #ks
  local newest = tonumber(ARGV[8])
  if nm > 0 and newest > hi then hi = newest end
else  -- compare each row's (event, created) time with its stored row's (a JSON row's first two numbers)
  local times, olds = cjson.decode(ARGV[9]), {}
  local ets, cts = times[1], times[2]  -- no created times: none was given
  for lo = 1, #ks, 4000 do
    local got = redis.call('MGET', unpack(ks, lo, math.min(lo + 3999, #ks)))
    for j = 1, #got do olds[lo + j - 1] = got[j] end
  end
  for i = 1, #ks do
    local stop = pos + lens[i]
    local et, ct = ets[i], cts and cts[i] or MIN
    local older = false
    if olds[i] then
      local a, b = string.match(olds[i], '^%[%s*(%-?%d+)%s*,%s*(%-?%d+)')
      local oet, oct = tonumber(a), tonumber(b)
      older = et < oet or (et == oet and ct < oct)
    end
    if not older then
      m[nm + 1] = ks[i]; m[nm + 2] = string.sub(rows, pos, stop - 1)
      nm = nm + 2
      if et > hi then hi = et end
    end
    pos = stop
  end
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
    "int_keys_json",
    "latest_rows",
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


def latest_rows(rkeys: list[str], et: list[int], ct: list[int]) -> list[int] | None:
    """The positions of each row key's latest row (greatest (event, created) time, the later row at a tie), in order;
    None when every key occurs once (the usual push: one set, ~3 µs at 100 rows)."""
    if len(set(rkeys)) == len(rkeys):
        return None
    best: dict[str, int] = {}
    for i, k in enumerate(rkeys):
        j = best.get(k)
        if j is None or (et[i], ct[i]) >= (et[j], ct[j]):
            best[k] = i
    return sorted(best.values())


def encode(
    rkeys: list[str], et: list[int], ct: list[int], cols: list[list[Any]], dtypes: list[str], keys_json: bytes = b""
) -> list[Any]:
    """The script's arguments after the view's: the rows' oldest and newest event times, their times document, the
    keys-and-lengths document and the rows' JSON texts back to back, one row per key (its latest: `latest_rows`);
    NaN as null. `keys_json`: the row keys' JSON array when the caller made it (`int_keys_json`, unique keys only)."""
    import orjson

    if not keys_json:
        keep = latest_rows(rkeys, et, ct)
        if keep is not None:
            rkeys, et, ct = [rkeys[i] for i in keep], [et[i] for i in keep], [ct[i] for i in keep]
            cols = [[c[i] for i in keep] for c in cols]
    n = len(et)
    if n == 0:
        return [MIN_I64, MIN_I64, b"[[]]", b'{"k":[],"n":[]}', b""]
    inf = float("inf")
    if any(dt in ("float64", "float32") and (inf in c or -inf in c) for c, dt in zip(cols, dtypes)):
        # orjson writes infinities as null: Python's json keeps them (Infinity), NaN still as null (missing)
        rows = [json.dumps([None if v != v else v for v in r]).encode() for r in zip(et, ct, *cols)]
    else:  # orjson writes NaN as null: NaN means missing, as in SQLite (one dumps of all rows and a split at the
        # separators for the lengths was slower: bytes.split of ~8 KB into 100 parts costs ~11 µs)
        rows = list(map(orjson.dumps, zip(et, ct, *cols)))
    # (no created times, the usual push: 100 numbers fewer for the script to decode when it reads stored rows)
    times = orjson.dumps((et,) if ct.count(MIN_I64) == n else (et, ct))
    doc = b'{"k":' + (keys_json or orjson.dumps(rkeys)) + b',"n":' + orjson.dumps(list(map(len, rows))) + b"}"
    return [min(et), max(et), times, doc, b"".join(rows)]


def int_keys_json(head: str, ids: list[int]) -> bytes:
    """The JSON array of the row keys `head + str(id)` of integer ids (at least one), written from orjson's text of the
    ids (integers hold no comma): ~2 µs for 100 keys, where 100 f-strings and their dumps take ~20."""
    import orjson

    h = orjson.dumps(head)[1:-1]  # (escaped as JSON: a quote or backslash in a name stays one character)
    return b'["' + h + orjson.dumps(ids)[1:-1].replace(b",", b'","' + h) + b'"]'


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
