"""Pushed rows checked against a view: its join keys, the source's event (and created) time and the typed fields.

Every check runs before anything is written; an error names the view, the column and what to do.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from roost.errors import RoostError, closest
from roost.features.checks import check_mixed_datetimes, nan_to_null
from roost.features.definitions import arrow_type
from roost.features.offline import micros

# (NumPy and Arrow at module level: this module is imported by a push, never by `import roost`; a function-level
# import costs ~0.2 µs, and a small push ran ~40 of them)
_OBJECT = np.dtype("O")
_NAT = np.iinfo(np.int64).min
_INTS: dict[Any, Any] = {
    np.dtype(t): pa.from_numpy_dtype(np.dtype(t)) for t in ("int64", "int32", "int16", "int8", "uint64", "uint32")
}

__all__ = ["as_table", "as_columns", "coerce", "read_file", "small_strings"]


def read_file(path: str | Path, view: str) -> Any:
    """Rows from a .parquet, .csv or .jsonl (one JSON object per line) file."""
    import json

    p = Path(path)
    what = f"push to view {view!r}"
    if not p.is_file():
        raise RoostError(f"{what}: no file {str(p)!r}", hint="give a .parquet, .csv or .jsonl file")
    low = p.name.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.read_table(p)
        if low.endswith(".csv"):
            import pyarrow.csv as pcsv

            return pcsv.read_csv(p)
        if low.endswith((".jsonl", ".ndjson", ".json")):
            out = []
            with open(p, encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            out.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise RoostError(f"{what}: {p.name} line {i} is not JSON: {exc}") from None
            return out
    except (pa.ArrowException, OSError) as exc:
        raise RoostError(f"{what}: cannot read {p.name}: {exc}") from None
    raise RoostError(f"{what}: cannot tell the format of {p.name}", hint="use a .parquet, .csv or .jsonl file")


def as_table(rows: Any, view: str) -> pa.Table:
    """Rows as an Arrow table: a pandas DataFrame, an Arrow table, a list of dicts, a dict of columns or a path."""
    got = as_columns(rows, view)
    return got if isinstance(got, pa.Table) else pa.Table.from_arrays(list(got.values()), names=list(got))


def as_columns(rows: Any, view: str) -> pa.Table | dict[str, pa.Array]:
    """`as_table`'s rows for `coerce`: a DataFrame's as {column: Arrow array}, which `coerce` reads without the
    table that `as_table` would build and `coerce` rebuild (~15 µs of a 100-row push); any other input as a table."""
    what = f"push to view {view!r}"
    if isinstance(rows, (str, Path)):
        rows = read_file(rows, view)
    if isinstance(rows, pa.Table):
        return rows
    try:
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            return _from_pandas(rows, what)
        if isinstance(rows, dict):
            cols = {str(k): list(v) if not hasattr(v, "__array__") else v for k, v in rows.items()}
            lens = {k: len(v) for k, v in cols.items()}
            if len(set(lens.values())) > 1:
                raise RoostError(f"{what}: columns differ in length {lens}", hint="give one value per row in each")
            return pa.table({k: _column(v, k, what) for k, v in cols.items()})
        if isinstance(rows, (list, tuple)):
            if not all(isinstance(r, dict) for r in rows):
                bad = next(i for i, r in enumerate(rows) if not isinstance(r, dict))
                raise RoostError(f"{what}: row {bad} is a {type(rows[bad]).__name__}, not a dict")
            names = list(dict.fromkeys(k for r in rows for k in r))
            for i, r in enumerate(rows):
                if len(r) != len(names):
                    lack = [k for k in names if k not in r]
                    raise RoostError(
                        f"{what}: row {i} lacks column(s) {lack}",
                        hint="give every row the same columns (None: missing)",
                    )
            return pa.table({k: _column([r[k] for r in rows], k, what) for k in names})
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise RoostError(f"{what}: rows cannot be converted: {exc}") from None
    raise RoostError(
        f"{what}: rows must be a pandas DataFrame, a list of dicts or a dict of columns, got {type(rows).__name__}"
    )


def _from_pandas(df: Any, what: str) -> dict[str, pa.Array]:
    """A DataFrame's columns as Arrow arrays, column by column (pandas' missing values as null): no pandas
    metadata, which `Table.from_pandas` builds and this push would throw away (~a third of a small push's time)."""

    names = _names(df.columns)
    if len(set(names)) != len(names):
        raise RoostError(f"{what}: column names repeat: {names}", hint="give each column once")
    # pandas' own column getter skips building a Series per column (`items()`: ~half a small push's conversion)
    get = getattr(df, "_get_column_array", None)
    if get is not None:  # (the columns are unique: their names are)
        cols = {n: get(i) for i, n in enumerate(names)}
    else:
        cols = {n: s.array for n, (_, s) in zip(names, df.items(), strict=True)}
    if any(getattr(a, "dtype", None) == _OBJECT for a in cols.values()):  # (df.dtypes builds a Series)
        check_mixed_datetimes(df, what)  # only object columns can mix naive and aware datetimes
    import pandas as pd

    tz = pd.DatetimeTZDtype
    return {n: _pandas_array(a, tz) for n, a in cols.items()}


def _names(index: Any) -> list[str]:
    """A frame's column labels as text: an Arrow-backed string index (pandas 3's default) read in one call, which
    iterating it value by value takes ~15x longer to do (~11 µs for 6 columns)."""

    arr = getattr(getattr(index, "array", None), "_pa_array", None)
    if isinstance(arr, pa.ChunkedArray) and arr.null_count == 0:
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return list(arr.to_pylist())
    return [str(c) for c in index]


def _pandas_array(a: Any, tz: Any = None) -> pa.Array:
    """One pandas column's values as Arrow (missing values as null); tz-aware times (dtype `tz`: pandas'
    DatetimeTZDtype) through their int64 view, which `pa.array` of a DatetimeArray takes ~10x longer to reach (the
    instants are the same: pandas keeps UTC)."""
    if tz is None:
        import pandas as pd

        tz = pd.DatetimeTZDtype
    dtype = getattr(a, "dtype", None)
    if isinstance(dtype, tz) and dtype.unit in ("s", "ms", "us", "ns"):
        i8 = np.asarray(a.asi8)  # (`a.view("i8")` costs ~40 us a column: a copy through pandas' view machinery)
        nat = i8 == _NAT
        typ = pa.timestamp(dtype.unit, tz="UTC")
        some = bool(nat.any())
        if not some and i8.flags.c_contiguous:  # the int64 buffer as is (`pa.array` then `view`: ~4x longer)
            return pa.Array.from_buffers(typ, len(i8), [None, pa.py_buffer(i8)])
        return pa.array(i8, pa.int64(), mask=nat if some else None).view(typ)
    ints = _INTS.get(dtype) if type(a) is np.ndarray else None  # (NumPy's own arrays only, not a subclass)
    if ints is not None and a.ndim == 1 and a.flags.c_contiguous:  # NumPy integers have no missing value:
        return pa.Array.from_buffers(ints, len(a), [None, pa.py_buffer(a)])  # the buffer as is (`pa.array`: ~3x)
    return pa.array(a, from_pandas=True)


def _column(values: Any, name: str, what: str) -> pa.Array:
    """One column's values as an Arrow array (Python datetimes must be all naive or all tz-aware)."""

    if isinstance(values, list):
        values = [None if isinstance(v, datetime) and v != v else v for v in values]  # NaT: missing
        kinds = {v.tzinfo is not None and v.utcoffset() is not None for v in values if isinstance(v, datetime)}
        if len(kinds) > 1:
            raise RoostError(
                f"{what}: column {name!r} mixes timezone-naive and tz-aware datetimes",
                hint="give every time an offset, e.g. datetime(..., tzinfo=timezone.utc)",
            )
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise RoostError(f"{what}: column {name!r} mixes value types: {exc}", hint="give one type per column") from None


def coerce(tbl: pa.Table | dict[str, pa.Array], view: dict[str, Any], src: dict[str, Any]) -> pa.Table:
    """The rows (a table, or `as_columns`' arrays) as the view's typed columns: join keys, __et, __ct (null when not
    given), fields."""

    name = view["name"]
    what = f"push to view {name!r}"
    et_col, ct_col = src["event_time"], src.get("created_time")
    keys: dict[str, str] = view["join_keys"]
    fields: dict[str, str] = view["fields"]
    need = [*keys, et_col, *fields]
    allowed = [*need, *([ct_col] if ct_col else [])]
    if isinstance(tbl, pa.Table):
        have, column = tbl.schema.names, tbl.column  # (`tbl.column_names` builds the columns first: ~20x longer)
    else:
        have, column = list(tbl), tbl.__getitem__
    missing = [c for c in need if c not in have]
    if missing:
        c = missing[0]
        near = closest(c, [x for x in have if x not in allowed])
        role = "join key" if c in keys else "event-time column" if c == et_col else f"field ({fields[c]})"
        raise RoostError(
            f"{what}: rows lack the {role} {c!r}" + (f" (and {missing[1:]})" if len(missing) > 1 else ""),
            hint=(f"did you mean {near!r}? " if near else "") + f"each row needs {need}; nothing was written",
        )
    extra = [c for c in have if c not in allowed]
    if extra:
        raise RoostError(
            f"{what}: unknown column(s) {extra}",
            hint=f"the view takes {allowed}; drop the others (nothing was written)",
        )
    out: dict[str, Any] = {}
    for k, dtype in keys.items():
        out[k] = _key(column(k), k, dtype, what)
    out["__et"] = _time(column(et_col), et_col, what, required=True)
    if ct_col and ct_col in have:
        out["__ct"] = _time(column(ct_col), ct_col, what, required=False)
    else:
        out["__ct"] = pa.nulls(len(out["__et"]), arrow_type("timestamp"))
    for f, dtype in fields.items():
        out[f] = _field(column(f), f, dtype, what)
    return pa.Table.from_arrays(list(out.values()), names=list(out))  # (pa.table of a dict: ~2x the time)


def _first_null(col: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.index(pc.is_null(col), True).as_py())


def _wrong(what: str, col: str, role: str, dtype: str, got: Any, hint: str) -> RoostError:
    return RoostError(f"{what}: {role} {col!r} is {dtype} but got {got} values", hint=hint + "; nothing was written")


def _key(col: Any, name: str, dtype: str, what: str) -> pa.Array:
    """A join key column of the key's type; null, fractional or out-of-range ids are refused."""

    if col.null_count:
        raise RoostError(f"{what}: join key {name!r} is null in row {_first_null(col)}", hint="every row needs its id")
    typ = col.type
    if dtype == "string":
        if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_integer(typ):
            return col if pa.types.is_string(typ) else col.cast(pa.string())
        raise _wrong(what, name, "join key", dtype, typ, "give ids as text (a float would not equal its text id)")
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        return _int(col, name, "join key", dtype, what)
    raise _wrong(what, name, "join key", dtype, typ, "give whole-number ids")


def _int(col: Any, name: str, role: str, dtype: str, what: str) -> Any:
    """An integer column of `dtype` from ints or whole floats (NaN as null); fractions and overflow refused."""
    import pyarrow.compute as pc

    target = arrow_type(dtype)
    if pa.types.is_floating(col.type):
        col = nan_to_null(col)
        valid = pc.drop_null(col)
        frac = pc.not_equal(valid, pc.trunc(valid))
        if len(valid) and pc.any(frac).as_py():
            bad = pc.filter(valid, frac)[0].as_py()
            raise RoostError(
                f"{what}: {role} {name!r} ({dtype}) got the non-integral value {bad!r}",
                hint=f"round it, or declare {name!r} as 'float64'; nothing was written",
            )
    if col.type == target:
        return col
    try:
        return col.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise RoostError(
            f"{what}: {role} {name!r} ({dtype}) got a value out of range: {exc}",
            hint="fix the value or declare a wider type; nothing was written",
        ) from None


def _field(col: Any, name: str, dtype: str, what: str) -> Any:
    """A field column of its declared type (nulls allowed: a missing value)."""

    typ = col.type
    target = arrow_type(dtype)
    if pa.types.is_null(typ):
        return pa.nulls(len(col), target)
    if dtype in ("int64", "int32"):
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
            return _int(col, name, "field", dtype, what)
    elif dtype in ("float64", "float32"):
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
            return nan_to_null(col if typ == target else col.cast(target))
    elif dtype == "bool":
        if pa.types.is_boolean(typ):
            return col
    elif dtype == "string":
        if pa.types.is_string(typ):
            return col
        if pa.types.is_large_string(typ):  # (pandas' default str columns are Arrow large_string)
            return small_strings(col)
    elif dtype == "timestamp":
        return _time(col, name, what, required=False)
    raise _wrong(what, name, "field", dtype, typ, f"convert the column to {dtype}")


def small_strings(col: Any) -> Any:
    """A large_string (chunked) array as string: its int64 offsets narrowed with NumPy when it is one unsliced chunk
    (compute's cast costs ~25 µs at a push's 100 rows, this ~5), else the cast."""

    arr = col.chunk(0) if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1 else col
    if isinstance(arr, pa.LargeStringArray) and arr.offset == 0 and len(arr):
        validity, offsets, data = arr.buffers()
        wide = np.frombuffer(offsets, dtype=np.int64, count=len(arr) + 1)
        if data is not None and int(wide[-1]) < 2**31 - 1:
            narrow = pa.py_buffer(wide.astype(np.int32))
            return pa.StringArray.from_buffers(len(arr), narrow, data, validity, arr.null_count)
    return col.cast(pa.string())


def _time(col: Any, name: str, what: str, required: bool) -> Any:
    """A tz-aware time column as UTC microseconds: Arrow timestamps with a zone, or ISO 8601 text with an offset."""

    target = arrow_type("timestamp")
    if required and col.null_count:
        raise RoostError(
            f"{what}: event-time column {name!r} is null in row {_first_null(col)}",
            hint="every pushed row needs its event time; nothing was written",
        )
    typ = col.type
    if pa.types.is_null(typ):
        return pa.nulls(len(col), target)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return pa.array([None if s is None else _parse(s, name, what) for s in col.to_pylist()], target)
    if not pa.types.is_timestamp(typ):
        raise RoostError(
            f"{what}: time column {name!r} has type {typ}, not a timestamp",
            hint="give tz-aware datetimes or ISO 8601 text with an offset, e.g. 2024-05-01T12:00:00Z",
        )
    if typ.tz is None:
        raise RoostError(
            f"{what}: time column {name!r} is timezone-naive (a naive/aware mix is an error)",
            hint=f"localise it, e.g. df[{name!r}] = df[{name!r}].dt.tz_localize('UTC'); nothing was written",
        )
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    col = micros(col)
    return col if col.type == target else col.cast(target)


def _parse(text: str, name: str, what: str) -> datetime:
    """One ISO 8601 time with an offset (naive text is refused)."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RoostError(
            f"{what}: time column {name!r} holds {text!r}, not an ISO 8601 time",
            hint="e.g. 2024-05-01T12:00:00Z or 2024-05-01T12:00:00+02:00",
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise RoostError(
            f"{what}: time column {name!r} holds the timezone-naive {text!r}",
            hint="give an offset, e.g. 2024-05-01T12:00:00Z",
        )
    return t
