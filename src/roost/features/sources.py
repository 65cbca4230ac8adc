"""Sources and views as DuckDB relations: one function builds a view's rows for training sets and materialisation."""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.features.checks import check_mixed_datetimes, float_text_key, int_cast, parquet_tz_kinds, user_error
from roost.features.definitions import DTYPES
from roost.features.push_log import with_pushed
from roost.features.sql_text import NEG_INF, lit, q, ts_lit

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

_AWARE = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
_NAIVE = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME", "DATE"}


__all__ = [
    "q",
    "lit",
    "ts_lit",
    "connect",
    "run",
    "refusals",
    "from_clause",
    "source_columns",
    "time_expr",
    "view_rows",
    "check_time_kinds",
]


def connect(root: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC whose relative file paths resolve from the workspace root."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    if root is not None:
        con.execute(f"SET file_search_path={lit(str(root))}")
    return con


def run(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> duckdb.DuckDBPyRelation:
    """Run SQL, turning DuckDB errors into RoostErrors that say what was being done."""
    import duckdb

    try:
        return con.sql(sql)
    except duckdb.Error as exc:
        refused = user_error(str(exc))
        if refused is not None:
            raise refused from None
        msg = str(exc).strip().splitlines()[0]
        hint = "check the source path and the column names in the definitions, then `roost features apply`"
        if "No files found" in msg or "No such file" in msg or "IO Error" in msg:
            hint = "the source file has disappeared or moved: restore it or update the Source path"
        raise RoostError(f"{what}: {msg}", hint=hint) from None


@contextmanager
def refusals() -> Iterator[None]:
    """Turn the errors that roost's own checks raise inside DuckDB queries (met when rows are fetched, not
    when `run` builds the relation) into RoostErrors."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        refused = user_error(str(exc))
        if refused is not None:
            raise refused from None
        if isinstance(exc, duckdb.ConversionException):  # a value out of the declared type's range (a uint64 id)
            raise RoostError(
                str(exc).strip().splitlines()[0],
                hint="a value does not fit the type the definitions declare: fix the data or the declared dtype",
            ) from None
        raise


def from_clause(src: dict[str, Any], root: Path) -> str:
    """The FROM-able SQL of a source: read_parquet/read_csv of its path or glob, or its SQL in parentheses."""
    if src.get("sql"):
        return f"({src['sql']})"
    path = str(src["path"])
    if "://" not in path:
        full = Path(path) if Path(path).is_absolute() else root / path
        if not glob.glob(str(full)):
            raise RoostError(
                f"source {src['name']!r}: no file matches {full}",
                hint="the file has disappeared or moved: restore it, or change the Source path "
                "and run `roost features apply`",
            )
        path = str(full)
    low = path.lower()
    if low.endswith((".parquet", ".pq", ".parquet/*", "*.parquet")):
        return f"read_parquet({lit(path)})"
    if low.endswith((".csv", ".tsv", ".csv.gz", ".txt")):
        return f"read_csv({lit(path)})"
    raise RoostError(
        f"source {src['name']!r}: cannot tell the format of {path}",
        hint="use a .parquet or .csv path, or sql=\"SELECT ... FROM read_json('...')\"",
    )


def source_columns(con: duckdb.DuckDBPyConnection, src: dict[str, Any], root: Path) -> dict[str, str]:
    """Column name -> DuckDB type of a source."""
    rel = run(con, f"DESCRIBE SELECT * FROM {from_clause(src, root)} AS __src", f"source {src['name']!r}")
    return {r[0]: str(r[1]).upper() for r in rel.fetchall()}


def time_expr(src: dict[str, Any], col: str, cols: dict[str, str]) -> str:
    """SQL giving column `col` of the source as TIMESTAMPTZ; naive times need the source's timezone."""
    if col not in cols:
        from roost.errors import closest

        near = closest(col, list(cols))
        raise RoostError(
            f"source {src['name']!r} has no time column {col!r}",
            hint=(f"did you mean {near!r}? " if near else "") + f"columns: {', '.join(cols)}",
        )
    typ, c = cols[col], f"__src.{q(col)}"
    ns = "_NS" in typ
    if typ in _AWARE or "WITH TIME ZONE" in typ or typ.startswith("TIMESTAMPTZ"):  # compared at microseconds, floored
        return f"date_trunc('microseconds', {c})" if ns else c
    if typ in _NAIVE or typ.startswith("TIMESTAMP"):
        if src.get("timezone"):
            if ns:
                return f"date_trunc('microseconds', timezone({lit(src['timezone'])}, {c}))"
            return f"timezone({lit(src['timezone'])}, {c}::TIMESTAMP)"
        raise RoostError(
            f"source {src['name']!r}: column {col!r} is a timezone-naive {typ}; roost compares "
            "tz-aware times only (a naive/aware mix is an error)",
            hint="store tz-aware timestamps, or declare Source(..., timezone='UTC') to localise them",
        )
    raise RoostError(
        f"source {src['name']!r}: time column {col!r} has type {typ}, not a timestamp",
        hint='cast it in a SQL source, e.g. sql="SELECT *, ts::TIMESTAMPTZ AS event_time FROM ..."',
    )


def view_rows(
    con: duckdb.DuckDBPyConnection,
    view: dict[str, Any],
    src: dict[str, Any],
    root: Path,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> str:
    """SQL of a view's rows: typed join keys, __et, __ct (-infinity when absent), __rn (source order) and fields.

    `limit` only bounds the rows a Python transformation sees (used to validate definitions cheaply).
    """
    cols = source_columns(con, src, root)
    et = time_expr(src, src["event_time"], cols) if src.get("event_time") else NEG_INF
    ct = time_expr(src, src["created_time"], cols) if src.get("created_time") else "NULL"
    keys = view["join_keys"]
    missing = [k for k in keys if k not in cols]
    if missing:
        raise RoostError(
            f"view {view['name']!r}: source {src['name']!r} has no join key column(s) {missing}",
            hint="columns: " + ", ".join(cols),
        )
    where = [f"__src.{q(k)} IS NOT NULL" for k in keys]
    if src.get("event_time"):
        where.append(f"{et} IS NOT NULL")
        if start is not None:
            where.append(f"{et} >= {ts_lit(start)}")
        if end is not None:
            where.append(f"{et} <= {ts_lit(end)}")
    tr = view.get("transform") or {}
    exprs = tr.get("exprs", {}) if tr.get("kind") == "sql" else {}
    from_sql = f"{from_clause(src, root)} AS __src"
    py_out: set[str] = set()
    if tr.get("kind") == "python":
        from_sql, py_out = _python_rows(con, view, src, root, where, limit)
        where = []
    sel = [_key_cast(view, src, k, t, cols.get(k)) for k, t in keys.items()]
    sel += [f"{et} AS __et", f"coalesce({ct}, {NEG_INF}) AS __ct", "row_number() OVER () AS __rn"]
    raw: dict[str, str] = {}
    for f in view["fields"]:
        if f in py_out:
            raw[f] = f"__out.{q(f)}"
        elif f in exprs:
            raw[f] = f"({exprs[f]})"
        elif f in cols:
            raw[f] = f"__src.{q(f)}"
        else:
            from roost.errors import closest

            near = closest(f, list(cols))
            raise RoostError(
                f"view {view['name']!r}: field {f!r} is not a column of source {src['name']!r} "
                "and has no transformation",
                hint=(f"did you mean {near!r}? " if near else "") + "add transform={"
                f"{f!r}: '<SQL expression>'}} or rename the field",
            )
    types = {f: cols[f] for f in raw if f not in py_out and f not in exprs}
    derived = [f for f in raw if f not in types]
    if derived:  # the types of transformed fields, from DuckDB's binder (no rows are read)
        desc = ", ".join(f"{raw[f]} AS {q(f)}" for f in derived)
        got = run(con, f"DESCRIBE SELECT {desc} FROM {from_sql} LIMIT 0", f"view {view['name']!r}").fetchall()
        types.update({r[0]: str(r[1]).upper() for r in got})
    stamps = [f for f, t in view["fields"].items() if t == "timestamp" and f in cols and f not in derived]
    check_time_kinds(con, src, root, cols, [c for c in (src.get("event_time"), src.get("created_time")) if c] + stamps)
    for f, t in view["fields"].items():
        sel.append(f"{_field_cast(view, src, f, t, raw[f], types.get(f))} AS {q(f)}")
    sql = f"SELECT {', '.join(sel)} FROM {from_sql}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if src.get("event_time"):
        sql = with_pushed(sql, view, root, start, end)
    return sql


def _key_cast(view: dict[str, Any], src: dict[str, Any], key: str, dtype: str, typ: str | None) -> str:
    """SQL of one join key cast to its declared type (integer keys refuse non-integral values)."""
    expr, target = f"__src.{q(key)}", DTYPES[dtype][0]
    if dtype == "string" and (typ or "").upper() in ("FLOAT", "DOUBLE", "REAL"):
        raise float_text_key(f"view {view['name']!r}: source {src['name']!r}", key, str(typ))
    if dtype not in ("int64", "int32"):
        return f"CAST({expr} AS {target}) AS {q(key)}"
    what = f"view {view['name']!r}: join key {key!r} ({dtype}) of source {src['name']!r}"
    hint = "a fractional id would silently join another entity: fix the source, or declare the key 'string'"
    return f"{int_cast(expr, typ, target, what, hint)} AS {q(key)}"


def _field_cast(view: dict[str, Any], src: dict[str, Any], field: str, dtype: str, expr: str, typ: str | None) -> str:
    """SQL of one field cast to its declared type: integers refuse fractions, naive times need a timezone.

    (NaN becomes null on the results: `checks.nan_to_null`.)
    """
    target = DTYPES[dtype][0]
    if dtype in ("int64", "int32"):
        what = f"view {view['name']!r}: field {field!r} ({dtype}) from source {src['name']!r}"
        hint = f"declare {field!r} as 'float64', or round it explicitly in a transform, e.g. {{'{field}': 'round(x)'}}"
        return int_cast(expr, typ, target, what, hint)
    t = (typ or "").upper()
    if dtype == "timestamp" and t.startswith("TIMESTAMP") and "TIME ZONE" not in t and not t.startswith("TIMESTAMPTZ"):
        if src.get("timezone"):
            return f"timezone({lit(src['timezone'])}, CAST({expr} AS TIMESTAMP))"
        raise RoostError(
            f"view {view['name']!r}: field {field!r} of source {src['name']!r} is a timezone-naive {typ}; "
            "roost keeps tz-aware times only (a naive/aware mix is an error)",
            hint="store tz-aware timestamps, or declare Source(..., timezone='UTC') to localise them",
        )
    return f"CAST({expr} AS {target})"


_AWARE_RE = r"\d:\d\d(:\d\d(\.\d*)?)?\s*([zZ]|[+-]\d\d?(:?\d\d)?(:?\d\d)?|\s?[A-Za-z][A-Za-z_/+-]*)\s*$"


def check_time_kinds(
    con: duckdb.DuckDBPyConnection, src: dict[str, Any], root: Path, cols: dict[str, str], names: list[str]
) -> None:
    """Raise when a timestamp column of a file source mixes timezone-naive and tz-aware values.

    DuckDB reads such a column with one type: a CSV column whose strings mix '...+02:00' and offset-less times
    is TIMESTAMPTZ with the naive ones taken as UTC, and a Parquet glob takes the first file's type for all.
    """
    names = [n for n in dict.fromkeys(names) if n in cols and cols[n].startswith("TIMESTAMP")]
    if not names or src.get("sql"):
        return
    fc = from_clause(src, root)
    path = fc[fc.index("(") + 1 : fc.rindex(")")]
    mixed: list[tuple[str, str]] = []
    if fc.startswith("read_parquet"):
        if len(glob.glob(_unquote(path))) > 1:
            for n, kinds in parquet_tz_kinds(con, _unquote(path), names).items():
                if kinds["aware"] and kinds["naive"]:
                    mixed.append((n, f"file {kinds['naive'][0]} is naive, {kinds['aware'][0]} is aware"))
    else:
        types = ", ".join(f"{lit(n)}: 'VARCHAR'" for n in names)
        parts = []
        for j, n in enumerate(names):
            aware = f"regexp_matches(trim(__s.{q(n)}), {lit(_AWARE_RE)})"
            parts.append(
                f"count(*) FILTER (WHERE {aware}) AS a{j}, count(*) FILTER (WHERE NOT {aware}) AS n{j}, "
                f"first(__s.{q(n)}) FILTER (WHERE NOT {aware}) AS fn{j}"
            )
        row = run(
            con,
            f"SELECT {', '.join(parts)} FROM read_csv({path}, types={{{types}}}) AS __s",
            f"source {src['name']!r}",
        ).fetchall()[0]
        for j, n in enumerate(names):
            n_aware, n_naive, example = row[3 * j : 3 * j + 3]
            if n_aware and n_naive:
                mixed.append((n, f"{n_naive} of {n_aware + n_naive} values have no offset, e.g. {example!r}"))
    if mixed:
        n, detail = mixed[0]
        raise RoostError(
            f"source {src['name']!r}: column {n!r} mixes timezone-naive and tz-aware timestamps ({detail}); "
            "DuckDB would read them all one way, the naive ones silently as UTC",
            hint="write every time with its offset (or every time naive and declare Source(..., timezone=...))",
        )


def _unquote(sql_lit: str) -> str:
    """The string of a quoted SQL literal."""
    return sql_lit[1:-1].replace("''", "'")


def _python_rows(
    con: duckdb.DuckDBPyConnection,
    view: dict[str, Any],
    src: dict[str, Any],
    root: Path,
    where: list[str],
    limit: int | None,
) -> tuple[str, set[str]]:
    """Run a view's Python transformation over its (filtered) source rows; return a FROM clause and its outputs."""
    import pyarrow as pa

    from roost.features.loader import load_function

    fn = load_function(view["transform"], root)
    sql = f"SELECT * FROM {from_clause(src, root)} AS __src"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    tbl = run(con, sql, f"view {view['name']!r}").to_arrow_table()
    try:
        out = fn(tbl.to_pandas())
    except Exception as exc:
        raise RoostError(
            f"view {view['name']!r}: transformation {view['transform']['function']!r} failed: "
            f"{type(exc).__name__}: {exc}",
            hint="it receives a pandas DataFrame of source rows",
        ) from exc
    out_tbl = _as_arrow(out, view["name"])
    if out_tbl.num_rows != tbl.num_rows:
        raise RoostError(
            f"view {view['name']!r}: transformation returned {out_tbl.num_rows} rows for {tbl.num_rows} source rows",
            hint="transformations are row-wise: one output row per input",
        )
    names = [n for n in out_tbl.column_names if n in view["fields"]]
    out_tbl = out_tbl.select(names)
    tag = f"__py_{view['name']}_{id(out_tbl)}"
    con.register(tag + "_src", tbl)
    con.register(tag + "_out", out_tbl if names else pa.table({"__none": pa.nulls(tbl.num_rows)}))
    return f"{tag}_src AS __src POSITIONAL JOIN {tag}_out AS __out", set(names)


def _as_arrow(out: Any, view_name: str) -> Any:
    """Convert a transformation's result (DataFrame, dict of arrays, Arrow table) to an Arrow table."""
    import pyarrow as pa

    if isinstance(out, pa.Table):
        return out
    try:
        import pandas as pd

        if isinstance(out, pd.Series):
            out = out.to_frame()
        if isinstance(out, pd.DataFrame):
            check_mixed_datetimes(out, f"view {view_name!r}: transformation output")
            return pa.Table.from_pandas(out, preserve_index=False)
        if isinstance(out, dict):
            return pa.table({k: pa.array(v) for k, v in out.items()})
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise RoostError(f"view {view_name!r}: transformation output cannot be converted: {exc}") from exc
    raise RoostError(
        f"view {view_name!r}: transformation returned {type(out).__name__}",
        hint="return a pandas DataFrame (or dict of arrays) with one column per field",
    )
