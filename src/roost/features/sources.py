"""Sources and views as DuckDB relations: one function builds a view's rows for training sets and materialisation."""

from __future__ import annotations

import glob
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError
from roost.features.definitions import DTYPES

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

NEG_INF = "'-infinity'::TIMESTAMPTZ"
_AWARE = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}
_NAIVE = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME", "DATE"}


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ts_lit(t: datetime) -> str:
    """An aware datetime as a DuckDB TIMESTAMPTZ literal."""
    return f"{lit(t.isoformat())}::TIMESTAMPTZ"


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
        msg = str(exc).strip().splitlines()[0]
        hint = "check the source path and the column names in the definitions, then `roost features apply`"
        if "No files found" in msg or "No such file" in msg or "IO Error" in msg:
            hint = "the source file has disappeared or moved: restore it or update the Source path"
        raise RoostError(f"{what}: {msg}", hint=hint) from None


def from_clause(src: dict, root: Path) -> str:
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


def source_columns(con: duckdb.DuckDBPyConnection, src: dict, root: Path) -> dict[str, str]:
    """Column name -> DuckDB type of a source."""
    rel = run(con, f"DESCRIBE SELECT * FROM {from_clause(src, root)} AS __src", f"source {src['name']!r}")
    return {r[0]: str(r[1]).upper() for r in rel.fetchall()}


def time_expr(src: dict, col: str, cols: dict[str, str]) -> str:
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
    view: dict,
    src: dict,
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
    sel = [f"CAST(__src.{q(k)} AS {DTYPES[t][0]}) AS {q(k)}" for k, t in keys.items()]
    sel += [f"{et} AS __et", f"coalesce({ct}, {NEG_INF}) AS __ct", "row_number() OVER () AS __rn"]
    for f, t in view["fields"].items():
        if f in py_out:
            expr = f"__out.{q(f)}"
        elif f in exprs:
            expr = f"({exprs[f]})"
        elif f in cols:
            expr = f"__src.{q(f)}"
        else:
            from roost.errors import closest

            near = closest(f, list(cols))
            raise RoostError(
                f"view {view['name']!r}: field {f!r} is not a column of source {src['name']!r} "
                "and has no transformation",
                hint=(f"did you mean {near!r}? " if near else "") + "add transform={"
                f"{f!r}: '<SQL expression>'}} or rename the field",
            )
        typ = DTYPES[t][0]
        if t in ("float64", "float32"):  # NaN means missing, as in every online store
            sel.append(f"nullif(CAST({expr} AS {typ}), 'NaN'::{typ}) AS {q(f)}")
        else:
            sel.append(f"CAST({expr} AS {typ}) AS {q(f)}")
    sql = f"SELECT {', '.join(sel)} FROM {from_sql}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql


def _python_rows(
    con: duckdb.DuckDBPyConnection, view: dict, src: dict, root: Path, where: list[str], limit: int | None
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
            return pa.Table.from_pandas(out, preserve_index=False)
        if isinstance(out, dict):
            return pa.table({k: pa.array(v) for k, v in out.items()})
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise RoostError(f"view {view_name!r}: transformation output cannot be converted: {exc}") from exc
    raise RoostError(
        f"view {view_name!r}: transformation returned {type(out).__name__}",
        hint="return a pandas DataFrame (or dict of arrays) with one column per field",
    )
