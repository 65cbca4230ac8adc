"""Refusals of silent wrong answers: non-integral values for integer keys and fields, naive/aware time mixes.

Integer casts of non-integer columns run in DuckDB as `CASE WHEN <not integral> THEN error(...) ELSE CAST(...)`:
one vectorised pass over the rows a query reads, and nothing at all for columns that are integers already. The
error text starts with MARK so `sources.run` turns it into a RoostError with its own hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roost.errors import RoostError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "MARK",
    "INT_TYPES",
    "is_integer_type",
    "int_cast",
    "float_text_key",
    "nan_to_null",
    "arrow_is_integer",
    "user_error",
    "check_mixed_datetimes",
    "parquet_tz_kinds",
]

MARK = "roost-refused: "
HINT_SEP = " | hint: "
INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "BOOLEAN",
    "INT1",
    "INT2",
    "INT4",
    "INT8",
}
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def float_text_key(what: str, key: str, typ: str) -> RoostError:
    """The refusal of floating-point values for a 'string' join key: their text is '1.0', never the id '1'."""
    return RoostError(
        f"{what}: join key {key!r} is declared 'string' but holds {typ} values, whose text ('1.0', '1e+20') would "
        "silently match no entity",
        hint="make the ids text before joining (pandas: df[k].astype('Int64').astype('string')), or declare the key "
        "'int64'",
    )


def is_integer_type(typ: str) -> bool:
    """True when a DuckDB type name holds integers only (its cast to an integer type cannot round)."""
    return typ.upper() in INT_TYPES


def int_cast(expr: str, typ: str | None, target: str, what: str, hint: str) -> str:
    """SQL casting `expr` (DuckDB type `typ`) to the integer type `target`, raising on a non-integral value.

    DuckDB's own cast rounds 3.2 to 3 (and '3.2' to 3); this refuses instead, quoting the value and `what`.
    """
    cast = f"CAST({expr} AS {target})"
    t = (typ or "").upper()
    if is_integer_type(t):
        return cast
    if t in _FLOATS:
        bad = f"(NOT isfinite({expr}) OR {expr} <> trunc({expr}))"
    elif t.startswith(("DECIMAL", "NUMERIC")):
        bad = f"({expr} <> trunc({expr}))"
    elif t.startswith("VARCHAR") or not t:
        d = f"TRY_CAST({expr} AS DOUBLE)"
        bad = f"({d} IS NULL OR NOT isfinite({d}) OR {d} <> trunc({d}))"
    else:  # dates, timestamps, ...: DuckDB's cast refuses them with its own error
        return cast
    msg = _lit(f"{MARK}{what} is not an integer: ")
    tail = _lit(HINT_SEP + hint)
    return f"CASE WHEN {bad} THEN error({msg} || CAST({expr} AS VARCHAR) || {tail}) ELSE {cast} END"


def nan_to_null(col: Any) -> Any:
    """A float Arrow (chunked) array with NaN as null; other arrays unchanged.

    NaN means missing, offline and online alike (SQLite stores NaN as NULL). This runs on the join's and the
    materialisation's output, not in SQL: DuckDB folds `nullif(x, 'NaN')` and even `isnan(x)` to false when
    Parquet statistics (which never count NaN) say a column holds none, so a SQL-side rule silently fails.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_floating(col.type) or len(col) == col.null_count:
        return col
    if col.null_count == 0:  # the usual case, in NumPy (two compute calls cost ~4x this at a push's 100 rows)
        import numpy as np

        one = col.chunk(0) if isinstance(col, pa.ChunkedArray) and col.num_chunks == 1 else col
        if not np.isnan(np.asarray(one)).any():  # (one chunk's NumPy view: ~1.5x faster than the chunked array's)
            return col
    nan = pc.is_nan(col)
    if not pc.any(nan).as_py():
        return col
    return pc.if_else(nan, pa.scalar(None, col.type), col)


def user_error(msg: str) -> RoostError | None:
    """The RoostError behind a DuckDB error raised by one of these checks, else None."""
    i = msg.find(MARK)
    if i < 0:
        return None
    text = msg[i + len(MARK) :]
    text, _, hint = text.partition(HINT_SEP)
    return RoostError(text.strip(), hint=hint.strip() or None)


def check_mixed_datetimes(df: Any, what: str) -> None:
    """Raise when an object column of a pandas frame mixes timezone-naive and tz-aware datetimes.

    Arrow converts such a column with the first value's kind: naive values after an aware one are silently
    read as UTC. Only object columns are looked at (datetime64 columns cannot mix).
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        return
    for name in df.columns:
        col = df[name]
        if col.dtype != object or not len(col):
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind not in ("datetime", "mixed"):
            continue
        aware = naive = 0
        first_naive = None
        for i, v in enumerate(col.array):
            if not hasattr(v, "utcoffset") or not hasattr(v, "tzinfo") or v is pd.NaT:
                continue
            if v.tzinfo is not None and v.utcoffset() is not None:
                aware += 1
            else:
                naive += 1
                first_naive = i if first_naive is None else first_naive
        if aware and naive:
            raise RoostError(
                f"{what}: column {name!r} mixes timezone-naive and tz-aware datetimes ({naive} naive, {aware} aware; "
                f"first naive at row {first_naive}); roost compares tz-aware times only",
                hint=f"localise the naive ones: pd.to_datetime(df[{name!r}], utc=True) reads every value as UTC only "
                "if that is what they mean; otherwise tz_localize them to their timezone first",
            )


def parquet_tz_kinds(con: Any, from_path: str, columns: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per timestamp column: {'aware': [files], 'naive': [files]} over the files of a Parquet path or glob."""
    rows = con.execute(
        "SELECT file_name, name, type, logical_type, converted_type FROM parquet_schema(?)", [from_path]
    ).fetchall()
    out: dict[str, dict[str, list[str]]] = {}
    want = set(columns)
    for file_name, name, _ptype, logical, converted in rows:
        if name not in want:
            continue
        logical = str(logical or "")
        if "isAdjustedToUTC=0" in logical:
            kind = "naive"
        elif "isAdjustedToUTC=1" in logical or str(converted or "").startswith("TIMESTAMP"):
            kind = "aware"
        else:
            continue
        out.setdefault(name, {"aware": [], "naive": []})[kind].append(str(file_name))
    return out


def arrow_is_integer(typ: pa.DataType) -> bool:
    """True when an Arrow type holds integers only."""
    import pyarrow as pa

    return bool(pa.types.is_integer(typ) or pa.types.is_boolean(typ))
