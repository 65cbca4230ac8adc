"""Point-in-time join of one view by sort and binary search in NumPy (the fast engine behind `training_set`).

DuckDB reads (key code, event time) of the view's rows whose keys occur among the entity rows and whose event
time can matter. NumPy packs (entity code, event-time step, row position) into one uint64 and sorts it (a SIMD
sort of a plain 64-bit array beats DuckDB's ASOF sort of keyed rows with their payload: bench/RESULTS.md); each entity
row binary-searches the last feature row at or before its time, then the TTL is checked on that row. Rows tied on
(key, event time) are settled afterwards by (created time, source order), for the matched tie groups only, and a
second read fetches the fields of the matched rows alone. The semantics are those of the ASOF SQL in
`offline.pit_join_sql`, the fallback when no exact 64-bit key fits (`join_view` returns None) and what
ENGINE="sql" forces; the property test runs every engine against a brute-force reference.

Event times become steps of the coarsest granularity they all share, so `et <= t` is `step(et) <= step(t)`
exactly; step 0 is -infinity (static views, whose rows match any time). Keys become dense codes: an integer key
is offset by the entity rows' smallest key; other keys are numbered through a join with the distinct entity keys.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from roost.features.definitions import DTYPES, arrow_type
from roost.features.sources import q, run, view_rows

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy as np
    import pyarrow as pa

    from roost.features.refs import ViewSelection

ENGINE = "auto"  # "auto": this engine where an exact key fits, else ASOF SQL; "sql": always ASOF SQL
SORT = "auto"  # "auto": packed sort when (code, step, position) fits KEY_BITS, else argsort; tests force "argsort"
# granularities tried, coarsest first (microseconds): day, hour, minute, second, millisecond, microsecond
GRAINS = (86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000, 1_000, 1)
INT_KEY_BITS = 40  # an integer key whose entity range needs more bits is numbered densely through a join instead
KEY_BITS = 64  # bits of the uint64 sort key (tests lower it to force the argsort and the SQL fallback)
BLOCK = 1 << 20  # rows per block when building keys (small temporaries stay in cache and are reused)


__all__ = ["ENGINE", "Entities", "Codes", "no_hugepages", "join_view", "Ties", "Sorted", "take"]


def _bits(n: int) -> int:
    return max(int(n), 0).bit_length()


class Entities:
    """The entity rows as NumPy: time in epoch microseconds with a validity mask, and per-key-set codes."""

    def __init__(self, con: Any, relation: str, table: pa.Table, time_col: str) -> None:
        import numpy as np
        import pyarrow as pa

        times = table.column(time_col)
        self.con, self.relation, self.table, self.n = con, relation, table, len(times)
        if isinstance(times, pa.ChunkedArray):
            times = times.combine_chunks()
        us = times.cast(pa.timestamp("us", tz=times.type.tz)).cast(pa.int64())
        self.valid = _valid(us)
        self.t = us.fill_null(0).to_numpy().astype(np.int64, copy=False)
        self._codes: dict[tuple[Any, ...], Codes] = {}

    def codes(self, keys: dict[str, str]) -> Codes:
        """The dense codes of a view's join keys (cached per key set)."""
        sig = tuple(keys.items())
        if sig not in self._codes:
            self._codes[sig] = Codes(self, keys, f"__kc{len(self._codes)}")
        return self._codes[sig]


class Codes:
    """Entity key -> code 0..n-1 (-1: null key), and the SQL giving each feature row's code and keeping known keys."""

    def __init__(self, ents: Entities, keys: dict[str, str], name: str) -> None:
        import numpy as np
        import pyarrow.compute as pc

        cast = [f"CAST({q(k)} AS {DTYPES[t][0]})" for k, t in keys.items()]
        k, t = next(iter(keys.items()))
        if len(keys) == 1 and t in ("int64", "int32"):
            col = ents.table.column(k)
            if col.type != arrow_type(t):  # DuckDB's cast, with its errors
                col = run(ents.con, f"SELECT {cast[0]} AS k FROM {ents.relation}", "entity keys").to_arrow_table()
                col = col.column("k")
            col = col.combine_chunks()
            mm = pc.min_max(col).as_py()
            if mm["min"] is None or _bits(mm["max"] - mm["min"]) <= INT_KEY_BITS:
                lo = 0 if mm["min"] is None else mm["min"]
                hi = lo - 1 if mm["min"] is None else mm["max"]
                self.n = hi - lo + 1
                self.entity = np.where(_valid(col), col.fill_null(lo).to_numpy().astype(np.int64) - lo, -1)
                self.expr = f"CAST(CAST(__v.{q(k)} AS BIGINT) - ({lo}) AS {_int_type(self.n)})"
                self.join = ""
                self.where = [f"__v.{q(k)} BETWEEN {lo} AND {hi}"]
                self.ordered = True  # no join: DuckDB keeps source order, so positions are the tie-break order
                return
        cols = ", ".join(f"__k{j}" for j in range(len(keys)))
        aliased = ", ".join(f"{c} AS __k{j}" for j, c in enumerate(cast))
        notnull = " AND ".join(f"__k{j} IS NOT NULL" for j in range(len(keys)))
        ents.con.execute(
            f"CREATE TEMP TABLE {name} AS SELECT {cols}, (row_number() OVER ()) - 1 AS __code "
            f"FROM (SELECT DISTINCT {aliased} FROM {ents.relation}) WHERE {notnull}"
        )
        got = run(
            ents.con,
            f"SELECT __rid, __code FROM (SELECT __rid, {aliased} FROM {ents.relation}) JOIN {name} USING ({cols})",
            "entity keys",
        ).fetchnumpy()
        self.entity = np.full(ents.n, -1, dtype=np.int64)
        self.entity[np.asarray(got["__rid"])] = np.asarray(got["__code"])
        self.n = int(self.entity.max(initial=-1)) + 1
        self.expr = f"CAST({name}.__code AS {_int_type(self.n)})"
        self.join = f" JOIN {name} ON " + " AND ".join(f"__v.{q(k)} = {name}.__k{j}" for j, k in enumerate(keys))
        self.where = []
        self.ordered = False  # a join need not keep source order: the row number comes along


def _int_type(n: int) -> str:
    """The SQL type of codes 0..n-1 (INTEGER halves what pass 1 carries)."""
    return "INTEGER" if n <= 2**31 else "BIGINT"


@contextmanager
def no_hugepages() -> Iterator[None]:
    """NumPy asks for transparent huge pages on arrays of 4 MB or more; with the common THP `defrag=madvise`
    that means compaction on first touch, which here costs more than the whole sort (figures: bench/RESULTS.md).
    The join's big arrays live for a fraction of a second, so it asks for ordinary pages meanwhile."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]  # private, untyped
    except ImportError:  # a NumPy without the switch: nothing to do
        yield
        return
    before = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(before)


def _valid(arr: pa.Array) -> np.ndarray:
    import numpy as np

    if arr.null_count == 0:
        return np.ones(len(arr), dtype=bool)
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def join_view(ents: Entities, vs: ViewSelection, root: Path) -> dict[str, Any] | None:
    """Output column -> values (one per entity row) for one view, or None when no exact 64-bit key fits.

    Pass 1 reads (code, event time; the row number unless rows come in source order) of the rows that can
    matter and finds each entity row's match; pass 2 reads the fields (and created times, for ties) of the
    matched rows only, which is cheaper than carrying every field of every row. A source that could give other
    rows or another order when read again (SQL, or a Python transformation, which would also run twice) is read
    once, everything included.
    """
    import numpy as np
    import pyarrow as pa

    static = not vs.source.get("event_time")
    ttl = None if static or vs.spec.get("ttl_seconds") is None else int(round(float(vs.spec["ttl_seconds"]) * 1e6))
    codes = ents.codes(vs.keys)
    ok = ents.valid & (codes.entity >= 0)
    nulls = {out: pa.nulls(ents.n) for out in vs.outputs}
    if not ok.any():
        return nulls
    where = list(codes.where)
    if not static:  # rows after the latest entity time, or expired before the earliest, never match
        t_ok = ents.t[ok]
        where.append(f"__et <= make_timestamptz({int(t_ok.max())})")
        if ttl is not None:
            where.append(f"__et >= make_timestamptz({int(t_ok.min()) - ttl})")
    has_ct = bool(vs.source.get("created_time"))
    once = bool(vs.source.get("sql")) or (vs.spec.get("transform") or {}).get("kind") == "python"
    # epoch_us(-infinity) is NULL: step 0, before every time (static views; +infinity never passes `where`)
    cols = [f"{codes.expr} AS __code", "epoch_us(__et) AS __e"]
    if not codes.ordered:
        cols.append("__rn::BIGINT AS __rn")
    late = [f"__v.{q(f)} AS {q(f)}" for f in vs.fields]
    if has_ct:  # epoch_us(-infinity) (no created time) is NULL: the oldest
        late.insert(0, "epoch_us(__ct) AS __c")
    from_sql = f"({view_rows(ents.con, vs.spec, vs.source, root)}) AS __v{codes.join}"
    where_sql = " WHERE " + " AND ".join(where) if where else ""
    what = f"point-in-time join of view {vs.name!r}"
    feats = run(
        ents.con, f"SELECT {', '.join(cols + late if once else cols)} FROM {from_sql}{where_sql}", what
    ).to_arrow_table()
    n = feats.num_rows
    if n == 0:
        return nulls
    idx = Sorted.build(feats, codes.n, n)
    if idx is None:
        return None
    # each entity row: the last (code, step) <= (its code, the step of its time), within the TTL
    at, found, key = idx.search(np.where(ok, codes.entity, 0), idx.step_of(ents.t))
    found &= ok
    if ttl is not None:  # the matched row must not be older than t - ttl (-infinity always is)
        step = idx.step(key)
        found &= (step > 0) & (idx.e_min + (step - 1) * idx.grain >= ents.t - ttl)
    if not found.any():
        return nulls
    row = idx.pos(at, key)
    del key
    # the rows of (key, event time) groups of two or more that entity rows matched: the group's winner is the
    # greatest (created time, source order); with rows in source order and no created time it is the last row
    ties = None
    if has_ct or idx.order is not None or not codes.ordered:
        ties = Ties.find(idx, at, found)
    plain = found if ties is None else found & ~ties.tied
    # the rows pass 2 reads: sorted positions, and where each plain match is among them
    cand, inverse = np.unique(
        np.concatenate([row[plain], ties.member]) if ties is not None else row[plain], return_inverse=True
    )  # (sorting; without return_inverse np.unique hashes, slower)
    rn = None if codes.ordered else take(feats.column("__rn"), cand).to_numpy()
    if once:
        got = pa.table({c: take(feats.column(c), cand) for c in (["__c"] if has_ct else []) + list(vs.fields)})
    elif codes.ordered:  # the same query again keeps the same rows in the same order: pick by position
        got = _rows_at(ents.con, f"SELECT {', '.join(late)} FROM {from_sql}{where_sql}", cand, n, vs.name, what)
    else:
        assert rn is not None  # rows not in source order carry their row number
        got = _rows_of(ents.con, f"SELECT __rn::BIGINT AS __rn, {', '.join(late)} FROM {from_sql}", rn, vs.name, what)
    pick = np.zeros(ents.n, dtype=np.int64)
    pick[plain] = inverse[: np.count_nonzero(plain)]
    if ties is not None:
        rank = cand if rn is None else rn  # source order of the candidates
        pick[ties.tied] = np.searchsorted(cand, ties.winners(cand, rank, got.column("__c") if has_ct else None))
    return {out: take(got.column(f), pick, found) for f, out in zip(vs.fields, vs.outputs)}


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without return_inverse hashes, slower than sorting: bench/RESULTS.md)."""
    import numpy as np

    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _rows_at(con: Any, sql: str, positions: np.ndarray, n: int, view: str, what: str) -> pa.Table:
    """The rows of `sql` (n rows) at the given sorted positions, streamed batch by batch into one chunk each."""
    import numpy as np
    import pyarrow as pa

    reader = run(con, sql, what).to_arrow_reader(batch_size=BLOCK)
    cols = [_Column(f.type, len(positions)) for f in reader.schema]
    off = 0
    for batch in reader:
        lo, hi = np.searchsorted(positions, (off, off + batch.num_rows))
        if hi > lo:
            sel = positions[lo:hi] - off
            for col, arr in zip(cols, batch.columns):
                col.put(lo, hi, arr, sel)
        off += batch.num_rows
    if off != n:
        raise RuntimeError(f"view {view!r}: the source changed while it was read twice ({n} rows, then {off})")
    return pa.table([c.array() for c in cols], schema=reader.schema)


class _Column:
    """A column gathered piece by piece: into one NumPy buffer when fixed-width, else Arrow pieces."""

    def __init__(self, typ: pa.DataType, n: int) -> None:
        import numpy as np

        self.typ, self.n = typ, n
        self.dtype = _fixed(typ)
        self.values = None if self.dtype is None else np.empty(n, dtype=self.dtype)
        self.valid: np.ndarray | None = None
        self.pieces: list[Any] = []

    def put(self, lo: int, hi: int, arr: pa.Array, sel: np.ndarray) -> None:
        """Rows lo:hi are arr[sel]."""
        import numpy as np
        import pyarrow as pa

        if self.values is None:
            self.pieces.append(arr.take(pa.array(sel)))
            return
        bufs = arr.buffers()
        self.values[lo:hi] = np.frombuffer(bufs[1], dtype=self.dtype, count=arr.offset + len(arr))[arr.offset :][sel]
        if arr.null_count:
            if self.valid is None:
                self.valid = np.ones(self.n, dtype=bool)
            bits = np.unpackbits(np.frombuffer(bufs[0], dtype=np.uint8), bitorder="little", count=arr.offset + len(arr))
            self.valid[lo:hi] = bits[arr.offset :].view(bool)[sel]

    def array(self) -> pa.Array:
        """The gathered column as one Arrow array."""
        import pyarrow as pa

        if self.values is None:
            return pa.concat_arrays(self.pieces) if self.pieces else pa.array([], self.typ)
        return _from_numpy(self.typ, self.values, self.valid)


def _rows_of(con: Any, sql: str, rn: np.ndarray, view: str, what: str) -> pa.Table:
    """The rows of `sql` whose __rn is in `rn` (a semi-join), in the order of `rn`."""
    import numpy as np
    import pyarrow as pa

    con.register("__wanted", pa.table({"__rn": rn}))
    try:
        got = run(con, f"SELECT * FROM ({sql}) WHERE __rn IN (SELECT __rn FROM __wanted)", what).to_arrow_table()
    finally:
        con.unregister("__wanted")
    got_rn = got.column("__rn").to_numpy()
    o = np.argsort(got_rn)
    order = np.argsort(rn)
    if len(got_rn) != len(rn) or not np.array_equal(got_rn[o], rn[order]):
        raise RuntimeError(f"view {view!r}: the source changed while it was read twice")
    back = np.empty(len(rn), dtype=np.int64)
    back[order] = o
    return pa.table({c: take(got.column(c), back) for c in got.column_names})


class Ties:
    """The matched (key, event time) groups of two or more rows: which entity rows matched one, and its rows."""

    def __init__(
        self, tied: np.ndarray, ends: np.ndarray, group: np.ndarray, member: np.ndarray, at: np.ndarray
    ) -> None:
        self.tied, self.ends, self.group, self.member, self.at = tied, ends, group, member, at

    @classmethod
    def find(cls, idx: Sorted, at: np.ndarray, found: np.ndarray) -> Ties:
        """The tie groups behind the matches (`at`: the last sorted index of each entity row's group)."""
        import numpy as np

        tied = found & (at > 0)
        cand = at[tied]
        tied[tied] = idx.hi(cand - 1) == idx.hi(cand)
        ends = _unique(at[tied])
        starts = idx.first(idx.hi(ends))
        sizes = ends - starts + 1
        group = np.repeat(np.arange(len(ends)), sizes)
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        member = idx.pos(offsets + np.repeat(starts, sizes))
        return cls(tied, ends, group, member, at)

    def winners(self, cand: np.ndarray, rank: np.ndarray, ct: pa.ChunkedArray | None) -> np.ndarray:
        """The winning row position of each tied entity row; `rank` and `ct` are per candidate."""
        import numpy as np

        if not self.tied.any():
            return np.zeros(0, dtype=np.int64)
        i = np.searchsorted(cand, self.member)
        keys = [rank[i]]
        if ct is not None:  # missing created time = oldest
            c = take(ct, i)
            keys.append(np.asarray(c.fill_null(np.iinfo(np.int64).min).to_numpy(), dtype=np.int64))
        keys.append(self.group)
        o = np.lexsort(keys)
        last = np.r_[self.group[o][1:] != self.group[o][:-1], True]
        winner = np.empty(len(self.ends), dtype=np.int64)
        winner[self.group[o][last]] = self.member[o][last]
        out: np.ndarray = winner[np.searchsorted(self.ends, self.at[self.tied])]
        return out


class Sorted:
    """Feature rows sorted by (code, step, position): packed in one uint64 when it fits, else an argsort of
    (code, step) keys. Unsigned, so all 64 bits carry the key (100M rows x 1M codes x minute steps need them)."""

    def __init__(
        self, keys: np.ndarray, order: np.ndarray | None, s_bits: int, r_bits: int, e_min: int, grain: int, top: int
    ) -> None:
        self.keys, self.order, self.s_bits, self.r_bits = keys, order, s_bits, r_bits
        self.e_min, self.grain, self.top = e_min, grain, top

    @classmethod
    def build(cls, feats: pa.Table, n_codes: int, n: int) -> Sorted | None:
        """Sort the fetched rows (columns __code, __e); None when (code, step) needs more than KEY_BITS."""
        import numpy as np

        e_col = feats.column("__e")
        finite = e_col.null_count < n
        e_min = e_max = 0
        grain = 1
        if finite:
            mm = _min_max(e_col)
            e_min, e_max = mm
            grain = _grain(e_col, e_min)
        top = (e_max - e_min) // grain + 1 if finite else 0
        c_bits, s_bits, r_bits = _bits(n_codes - 1), _bits(top), _bits(n - 1)
        if c_bits + s_bits > KEY_BITS:
            return None
        packed = c_bits + s_bits + r_bits <= KEY_BITS and SORT != "argsort"
        shift = r_bits if packed else 0
        keys = np.empty(n, dtype=np.uint64)
        off = 0
        for code_c, e_c in zip(feats.column("__code").chunks, e_col.chunks):
            for s in range(0, len(code_c), BLOCK):
                code = code_c.slice(s, BLOCK).to_numpy()  # codes are >= 0: int64 viewed as uint64, no copy
                code = code.view(np.uint64) if code.dtype == np.int64 else code.astype(np.uint64)
                e = e_c.slice(s, BLOCK)
                m = len(code)
                if e.null_count:  # -infinity: step 0
                    step = e.fill_null(e_min - grain).to_numpy().astype(np.int64)
                else:
                    step = e.to_numpy().astype(np.int64)  # a copy: Arrow's buffer is read-only
                step -= e_min
                step //= grain
                step += 1
                ustep = step.view(np.uint64)  # steps are >= 0
                out = keys[off : off + m]
                np.left_shift(code, s_bits + shift, out=out)
                if packed:
                    ustep <<= shift
                    out |= np.arange(off, off + m, dtype=np.uint64)
                out |= ustep
                off += m
        if packed:
            keys.sort()
            return cls(keys, None, s_bits, r_bits, e_min, grain, top)
        order = np.argsort(keys)
        return cls(keys[order], order, s_bits, 0, e_min, grain, top)

    def step_of(self, t: np.ndarray) -> np.ndarray:
        """The step of entity times (0 before the first finite event time, capped at the last)."""
        import numpy as np

        if self.top == 0:
            return np.zeros(len(t), dtype=np.int64)
        s = t - self.e_min
        s //= self.grain
        s += 1
        np.clip(s, 0, self.top, out=s)
        return s

    def search(self, code: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each query: the sorted index of the last row with (code, step) <= it (clipped to 0), whether that
        row has the code, and its key (the queries go in sorted, so the lookups walk the keys in order)."""
        import numpy as np

        code = code.astype(np.uint64)  # codes and steps are >= 0
        query = ((code << self.s_bits) | step.astype(np.uint64)) << self.r_bits | ((1 << self.r_bits) - 1)
        order = np.argsort(query)
        got = np.searchsorted(self.keys, query[order], side="right")
        got -= 1
        at = np.empty(len(query), dtype=np.int64)
        at[order] = got
        found = at >= 0
        np.maximum(got, 0, out=got)
        key = np.empty(len(query), dtype=np.uint64)
        key[order] = self.keys[got]
        np.maximum(at, 0, out=at)
        found &= key >> (self.r_bits + self.s_bits) == code
        return at, found, key

    def hi(self, at: np.ndarray) -> np.ndarray:
        """(code, step) at sorted indices."""
        out: np.ndarray = self.keys[at] >> self.r_bits
        return out

    def step(self, key: np.ndarray) -> np.ndarray:
        """The event-time step of keys (int64)."""
        import numpy as np

        out: np.ndarray = ((key >> self.r_bits) & ((1 << self.s_bits) - 1)).astype(np.int64)
        return out

    def pos(self, at: np.ndarray, key: np.ndarray | None = None) -> np.ndarray:
        """Row position (in the fetched table, int64) at sorted indices (whose keys, if given, save a lookup)."""
        import numpy as np

        out: np.ndarray
        if self.order is not None:
            out = self.order[at]
        else:  # a fresh array of values < 2**63: viewed as int64, not copied
            out = ((self.keys[at] if key is None else key) & ((1 << self.r_bits) - 1)).view(np.int64)
        return out

    def first(self, hi: np.ndarray) -> np.ndarray:
        """Sorted index of the first row with each (code, step)."""
        import numpy as np

        return np.searchsorted(self.keys, hi << self.r_bits, side="left")


def _min_max(col: pa.ChunkedArray) -> tuple[int, int]:
    import pyarrow.compute as pc

    mm = pc.min_max(col).as_py()
    return int(mm["min"]), int(mm["max"])


def _grain(e_col: pa.ChunkedArray, e_min: int) -> int:
    """The coarsest of GRAINS that divides every (event time - e_min); nulls ignored."""
    import numpy as np

    chunks = [c for c in e_col.chunks if len(c) > c.null_count]
    head = chunks[0].drop_null().to_numpy()[:4096] - e_min
    for g in GRAINS:
        if np.any(head % g):
            continue
        if all(not np.any(((c.drop_null() if c.null_count else c).to_numpy() - e_min) % g) for c in chunks):
            return g
    return 1


def _fixed(typ: pa.DataType) -> str | None:
    """The NumPy dtype holding a fixed-width Arrow type's values (None: use Arrow's take)."""
    import pyarrow as pa

    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_timestamp(typ):
        return f"u{typ.bit_width // 8}"
    return None


def _from_numpy(typ: pa.DataType, values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    nulls = 0 if valid is None else len(valid) - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls and valid is not None else None
    return pa.Array.from_buffers(typ, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def take(col: pa.Array | pa.ChunkedArray, idx: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """col[idx], null where `valid` is False: NumPy gathers chunk by chunk for fixed-width columns (Arrow's take
    is slower here, and concatenating a big chunked column first costs more than a few gathers: bench/RESULTS.md),
    Arrow's take for the others."""
    import numpy as np
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray) and col.num_chunks != 1 and len(col) <= 4 * len(idx):
        col = col.combine_chunks()  # cheap next to the gathers
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    typ = col.type
    if valid is not None:
        idx = np.where(valid, idx, 0)
    dtype = _fixed(typ)
    if dtype is None or not len(col):
        return (
            pa.chunked_array(chunks, typ).take(pa.array(idx, mask=None if valid is None else ~valid)).combine_chunks()
        )
    if len(chunks) == 1:
        c = chunks[0]
        bufs = c.buffers()
        out = np.frombuffer(bufs[1], dtype=dtype, count=c.offset + len(c))[c.offset :][idx]
        ok = valid
        if c.null_count:
            bits = np.unpackbits(np.frombuffer(bufs[0], dtype=np.uint8), bitorder="little", count=c.offset + len(c))
            ok = bits[c.offset :].view(bool)[idx] if valid is None else bits[c.offset :].view(bool)[idx] & valid
        return _from_numpy(typ, out, ok)
    out = np.empty(len(idx), dtype=dtype)
    ok = None if valid is None else valid.copy()
    lens = np.array([len(c) for c in chunks], dtype=np.int64)
    starts = np.cumsum(lens) - lens
    which = np.searchsorted(starts, idx, side="right") - 1  # the indices grouped by chunk
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(len(chunks) + 1))
    for k, c in enumerate(chunks):
        if not len(c):
            continue
        sel = order[bounds[k] : bounds[k + 1]]
        local = idx[sel] - starts[k]
        bufs = c.buffers()
        out[sel] = np.frombuffer(bufs[1], dtype=dtype, count=c.offset + len(c))[c.offset :][local]
        if c.null_count:
            bits = np.unpackbits(np.frombuffer(bufs[0], dtype=np.uint8), bitorder="little", count=c.offset + len(c))
            if ok is None:
                ok = np.ones(len(idx), dtype=bool)
            ok[sel] &= bits[c.offset :].view(bool)[local]
    return _from_numpy(typ, out, ok)
