"""A view's rows as a Spark DataFrame: the Spark twin of `sources.view_rows`, with the same columns and checks.

Columns: typed join keys, __et and __ct (UTC epoch microseconds; null = -infinity: a static view, no created
time), __file and __mid (source order: file path, then Spark's monotonically increasing id, which grows with
the row's position inside one file), and the fields cast to their declared types. DuckDB SQL (SQL sources,
SQL transformations) runs as Spark SQL, with `read_parquet('...')` / `read_csv('...')` mapped to Spark's
readers; Python transformations run on the executors through `mapInArrow`, one Arrow batch at a time. A view's
pushed rows (`push_log`) are added by `spark_push.view_rows`.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import reduce
from pathlib import Path
from typing import Any

from roost.errors import RoostError, closest
from roost.features.checks import HINT_SEP, MARK, float_text_key, user_error
from roost.features.definitions import LOADER_PREFIX
from roost.features.sources import from_clause

SPARK_TYPES = {
    "int64": "bigint",
    "int32": "int",
    "float64": "double",
    "float32": "float",
    "bool": "boolean",
    "string": "string",
    "timestamp": "timestamp",
}
_INTS = {"tinyint", "smallint", "int", "bigint", "boolean"}
AMBIGUITY_HOURS = 3  # more than any clock setback (1 h; 30 min at Lord Howe), far less than between two setbacks
_TABLE_FN = re.compile(r"\b(read_parquet|parquet_scan|read_csv_auto|read_csv)\s*\(\s*'((?:[^']|'')*)'\s*\)", re.I)
DIALECT_HINT = (
    "the Spark engine runs DuckDB SQL as Spark SQL (read_parquet('...') and read_csv('...') become Spark "
    "readers): use SQL both dialects accept, a path= source or a Python transformation, or the local engine"
)
_views = itertools.count()

__all__ = ["SPARK_TYPES", "spark_errors", "run_sql", "read_source", "int_cast", "localised", "view_frame"]


def _first_line(exc: BaseException) -> str:
    """The error's first line; for a Python worker's error, the exception line of its traceback."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = text.splitlines()
    if "Python worker" in lines[0]:
        errs = [ln.strip() for ln in lines if re.match(r"^\w+(Error|Exception)\b", ln.strip())]
        if errs:
            return errs[-1]
    return lines[0]


def _is_spark_error(exc: BaseException) -> bool:
    return any(c.__module__.startswith(("pyspark", "py4j")) for c in type(exc).__mro__)


@contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Turn Spark errors into RoostErrors: roost's own refusals keep their words, others say what was done."""
    try:
        yield
    except RoostError:
        raise
    except Exception as exc:
        if not _is_spark_error(exc):
            raise
        text = str(exc)
        i = text.find(MARK)
        if i >= 0:  # the refusal's line, without Spark's error class, SQLSTATE or stack trace
            line = text[i:].splitlines()[0]
            line = re.split(r"\s+SQLSTATE: |\"?\s*$", line)[0].rstrip(". \"'")
            refused = user_error(line)
            if refused is not None:
                raise refused from None
        hint = "see the Spark error above; the local engine (offline: {engine: local}) runs the same definitions"
        if "PATH_NOT_FOUND" in text or "FileNotFound" in text:
            hint = "the source file has disappeared or moved: restore it or update the Source path"
        elif "TIMESTAMP(NANOS" in text:
            hint = (
                "Spark reads no nanosecond Parquet timestamps: write microseconds (pandas: "
                "df.to_parquet(path, coerce_timestamps='us'); pyarrow: pq.write_table(t, path, "
                "coerce_timestamps='us')), or use the local engine, which floors nanoseconds to microseconds"
            )
        raise RoostError(f"{what} (Spark): {_first_line(exc)}", hint=hint) from None


def run_sql(spark: Any, sql: str, root: Path, what: str) -> Any:
    """DuckDB SQL as a Spark DataFrame: read_parquet/read_csv of a path become temporary views of Spark readers."""

    def table(m: re.Match[str]) -> str:
        fn, path = m.group(1).lower(), m.group(2).replace("''", "'")
        full = path if "://" in path or Path(path).is_absolute() else str(root / path)
        df = spark.read.parquet(full) if "parquet" in fn else _read_csv(spark, full)
        name = f"__roost_src{next(_views)}"
        df.createOrReplaceTempView(name)
        return name

    from pyspark.errors import AnalysisException

    try:
        return spark.sql(_TABLE_FN.sub(table, sql))
    except AnalysisException as exc:  # ParseException is one
        raise RoostError(
            f"{what}: this DuckDB SQL does not run as Spark SQL: {_first_line(exc)}", hint=DIALECT_HINT
        ) from None


def _read_csv(spark: Any, path: str) -> Any:
    """A CSV file or glob with a header, types inferred (DuckDB's read_csv does the same)."""
    sep = "\t" if path.lower().endswith(".tsv") else ","
    return spark.read.option("header", "true").option("inferSchema", "true").option("sep", sep).csv(path)


def read_source(spark: Any, src: dict[str, Any], root: Path) -> Any:
    """A source as a Spark DataFrame with __file and __mid (source order) added."""
    from pyspark.sql import functions as F

    if src.get("sql"):
        df = run_sql(spark, str(src["sql"]), root, f"source {src['name']!r}")
        return df.withColumn("__file", F.lit("")).withColumn("__mid", F.monotonically_increasing_id())
    path = str(src["path"])
    if "://" not in path:
        from_clause(src, root)  # the local engine's checks: a file matches, the format is known
        path = str(Path(path) if Path(path).is_absolute() else root / path)
    low = path.lower()
    with spark_errors(f"source {src['name']!r}"):
        if low.endswith((".csv", ".tsv", ".csv.gz", ".txt")):
            df = _read_csv(spark, path)
        elif low.endswith((".parquet", ".pq", ".parquet/*", "*.parquet")):
            df = spark.read.parquet(path)
        else:
            raise RoostError(f"source {src['name']!r}: cannot tell the format of {path}", hint="use .parquet or .csv")
        return df.select(
            "*", F.col("_metadata.file_path").alias("__file"), F.monotonically_increasing_id().alias("__mid")
        )


def localised(c: Any, zone: str) -> Any:
    """Naive local times in `zone` as instants, read as DuckDB's `timezone(zone, ts)` reads them: an ambiguous time
    (the clock went back) is the later of its two instants, a time in a gap (the clock went forward) is shifted
    forward by the gap. Spark's to_utc_timestamp alone takes the earlier instant of an ambiguous time."""
    from pyspark.sql import functions as F

    local = c.cast("timestamp_ntz").cast("timestamp")  # the wall time, as an instant in the session's UTC
    first = F.to_utc_timestamp(local, zone)
    ahead = F.expr(f"INTERVAL {AMBIGUITY_HOURS} HOURS")
    # the instant of the wall time read with the offset in force a few hours later, when that reading is exact
    later = F.to_utc_timestamp(local + ahead, zone) - ahead
    return F.when(F.from_utc_timestamp(later, zone) == local, F.greatest(first, later)).otherwise(first)


def _time(src: dict[str, Any], col: str, types: dict[str, str]) -> Any:
    """A source time column as a Spark TIMESTAMP (an instant); naive times need the source's timezone."""
    from pyspark.sql import functions as F

    if col not in types:
        near = closest(col, [c for c in types if not c.startswith("__")])
        raise RoostError(
            f"source {src['name']!r} has no time column {col!r}",
            hint=(f"did you mean {near!r}? " if near else "") + f"columns: {', '.join(types)}",
        )
    typ, c = types[col], F.col(f"`{col}`")
    if typ == "timestamp":
        return c
    if typ in ("timestamp_ntz", "date"):
        if src.get("timezone"):
            return localised(c, str(src["timezone"]))
        raise RoostError(
            f"source {src['name']!r}: column {col!r} is a timezone-naive {typ}; roost compares "
            "tz-aware times only (a naive/aware mix is an error)",
            hint="store tz-aware timestamps, or declare Source(..., timezone='UTC') to localise them",
        )
    raise RoostError(
        f"source {src['name']!r}: time column {col!r} has type {typ}, not a timestamp",
        hint='cast it in a SQL source, e.g. sql="SELECT *, CAST(ts AS TIMESTAMP) AS event_time FROM ..."',
    )


def int_cast(c: Any, typ: str, target: str, what: str, hint: str) -> Any:
    """`c` (Spark type `typ`) cast to the integer type `target`, raising on a non-integral value (like
    `checks.int_cast`: Spark's own cast would turn 3.2 into 3)."""
    from pyspark.sql import functions as F

    cast = c.cast(target)
    if typ in _INTS:
        return cast
    inf = float("inf")
    if typ in ("float", "double"):
        bad = F.isnan(c) | (F.abs(c) == inf) | (c != F.rint(c))
    elif typ.startswith("decimal"):
        bad = c != F.round(c, 0)
    elif typ == "string":
        d = c.try_cast("double")
        bad = d.isNull() | F.isnan(d) | (F.abs(d) == inf) | (d != F.rint(d))
        cast = F.coalesce(c.try_cast(target), d.cast(target))
    else:
        return cast
    msg = F.concat(F.lit(f"{MARK}{what} is not an integer: "), c.cast("string"), F.lit(HINT_SEP + hint))
    return F.when(bad, F.raise_error(msg)).otherwise(cast)


def _field_cast(view: dict[str, Any], src: dict[str, Any], field: str, dtype: str, c: Any, typ: str) -> Any:
    """A field cast to its declared type: integers refuse fractions, naive times need a timezone."""
    target = SPARK_TYPES[dtype]
    if dtype in ("int64", "int32"):
        what = f"view {view['name']!r}: field {field!r} ({dtype}) from source {src['name']!r}"
        hint = f"declare {field!r} as 'float64', or round it explicitly in a transform, e.g. {{'{field}': 'round(x)'}}"
        return int_cast(c, typ, target, what, hint)
    if dtype == "timestamp" and typ in ("timestamp_ntz", "date"):
        if src.get("timezone"):
            return localised(c, str(src["timezone"]))
        raise RoostError(
            f"view {view['name']!r}: field {field!r} of source {src['name']!r} is a timezone-naive {typ}; "
            "roost keeps tz-aware times only (a naive/aware mix is an error)",
            hint="store tz-aware timestamps, or declare Source(..., timezone='UTC') to localise them",
        )
    return c.cast(target)


def view_frame(
    spark: Any,
    view: dict[str, Any],
    src: dict[str, Any],
    root: Path,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    """A view's rows (keys, __et, __ct, __file, __mid, fields) as a Spark DataFrame, filtered like `view_rows`."""
    from pyspark.sql import functions as F

    df = read_source(spark, src, root)
    types = dict(df.dtypes)
    keys: dict[str, str] = view["join_keys"]
    missing = [k for k in keys if k not in types]
    if missing:
        raise RoostError(
            f"view {view['name']!r}: source {src['name']!r} has no join key column(s) {missing}",
            hint="columns: " + ", ".join(c for c in types if not c.startswith("__")),
        )
    et = _time(src, src["event_time"], types) if src.get("event_time") else None
    ct = _time(src, src["created_time"], types) if src.get("created_time") else None
    where = [F.col(f"`{k}`").isNotNull() for k in keys]
    if et is not None:
        where.append(et.isNotNull())
        if start is not None:
            where.append(et >= F.lit(start))
        if end is not None:
            where.append(et <= F.lit(end))
    df = df.where(reduce(lambda a, b: a & b, where))
    tr = view.get("transform") or {}
    exprs: dict[str, str] = tr.get("exprs", {}) if tr.get("kind") == "sql" else {}
    py_out: set[str] = set()
    if tr.get("kind") == "python":
        df, py_out = _python_rows(df, view, root)
    sel = []
    for k, dtype in keys.items():
        c = F.col(f"`{k}`")
        if dtype in ("int64", "int32"):
            what = f"view {view['name']!r}: join key {k!r} ({dtype}) of source {src['name']!r}"
            hint = "a fractional id would silently join another entity: fix the source, or declare the key 'string'"
            c = int_cast(c, types[k], SPARK_TYPES[dtype], what, hint)
        elif dtype == "string" and types[k] in ("float", "double"):
            raise float_text_key(f"view {view['name']!r}: source {src['name']!r}", k, types[k])
        else:
            c = c.cast(SPARK_TYPES[dtype])
        sel.append(c.alias(k))
    null = F.lit(None).cast("bigint")
    sel += [
        (F.unix_micros(et) if et is not None else null).alias("__et"),
        (F.unix_micros(ct) if ct is not None else null).alias("__ct"),
        F.col("__file"),
        F.col("__mid"),
    ]
    raw: dict[str, Any] = {}
    for f in view["fields"]:
        if f in py_out:
            raw[f] = F.col(f"`__py_{f}`")
        elif f in exprs:
            raw[f] = F.expr(exprs[f])
        elif f in types:
            raw[f] = F.col(f"`{f}`")
        else:
            near = closest(f, [c for c in types if not c.startswith("__")])
            raise RoostError(
                f"view {view['name']!r}: field {f!r} is not a column of source {src['name']!r} "
                "and has no transformation",
                hint=(f"did you mean {near!r}? " if near else "") + "add transform={"
                f"{f!r}: '<SQL expression>'}} or rename the field",
            )
    from pyspark.errors import AnalysisException

    try:  # the types of the raw fields, from Spark's analyser (no rows are read)
        raw_types = dict(df.select(*[c.alias(f) for f, c in raw.items()]).dtypes)
    except AnalysisException as exc:
        bad = ", ".join(f"{f}: {exprs[f]!r}" for f in exprs)
        raise RoostError(
            f"view {view['name']!r}: a SQL transformation ({bad}) does not run as Spark SQL: {_first_line(exc)}",
            hint=DIALECT_HINT,
        ) from None
    for f, dtype in view["fields"].items():
        sel.append(_field_cast(view, src, f, dtype, raw[f], raw_types[f]).alias(f))
    return df.select(*sel)


def _python_rows(df: Any, view: dict[str, Any], root: Path) -> tuple[Any, set[str]]:
    """Run a view's Python transformation on the executors (mapInArrow); its outputs are columns __py_<field>."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_type

    from roost.features.loader import load_function

    fn = load_function(view["transform"], root)
    mod = sys.modules.get(fn.__module__)
    if mod is not None and mod.__name__.startswith(LOADER_PREFIX + "."):  # a workspace file: ship it by value
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(mod)  # type: ignore[no-untyped-call]  # vendored, untyped
    name, label = str(view["name"]), str(view["transform"].get("function"))
    fields = view["fields"]
    src_cols = [c for c in df.columns if c not in ("__file", "__mid")]
    with spark_errors(f"view {name!r}"):
        sample = df.select(*[f"`{c}`" for c in src_cols]).limit(64).toArrow()
    try:
        out = _apply(fn, sample, name, label)
    except RuntimeError as exc:
        refused = user_error(str(exc))
        if refused is None:
            raise
        raise refused from None
    names = [n for n in out.column_names if n in fields]
    typed = {n: out.schema.field(n).type for n in names}
    for n, t in typed.items():
        if pa.types.is_null(t):
            from roost.features.definitions import arrow_type

            typed[n] = arrow_type(fields[n])
    from pyspark.sql.types import StructField, StructType

    extra = [StructField(f"__py_{n}", from_arrow_type(typed[n]), True) for n in names]
    schema = StructType([*df.schema.fields, *extra])  # a new schema: StructType.add would change df's own

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        for b in batches:
            tbl = pa.Table.from_batches([b])
            got = _apply(fn, tbl.select(src_cols), name, label)
            cols = list(b.columns) + [got.column(n).combine_chunks().cast(typed[n]) for n in names]
            yield pa.RecordBatch.from_arrays(cols, names=[*b.schema.names, *[f"__py_{n}" for n in names]])

    from roost.spark_session import quiet_pyspark

    with quiet_pyspark():  # PySpark's pandas-version warning: this path is Arrow only
        return df.mapInArrow(run, schema), set(names)


def _apply(fn: Callable[..., Any], tbl: Any, view: str, label: str) -> Any:
    """The transformation's output for a batch of source rows, as an Arrow table (refusals carry MARK)."""
    import pyarrow as pa

    try:
        out = fn(tbl.to_pandas())
        if not isinstance(out, pa.Table):
            import pandas as pd

            if isinstance(out, pd.Series):
                out = out.to_frame()
            if isinstance(out, pd.DataFrame):
                out = pa.Table.from_pandas(out, preserve_index=False)
            elif isinstance(out, dict):
                out = pa.table({k: pa.array(v) for k, v in out.items()})
            else:
                raise TypeError(f"returned {type(out).__name__}, not a DataFrame, dict of arrays or Arrow table")
    except Exception as exc:
        raise RuntimeError(
            f"{MARK}view {view!r}: transformation {label!r} failed: {type(exc).__name__}: {exc}"
            f"{HINT_SEP}it receives a pandas DataFrame of source rows"
        ) from exc
    if out.num_rows != tbl.num_rows:
        raise RuntimeError(
            f"{MARK}view {view!r}: transformation returned {out.num_rows} rows for {tbl.num_rows} source rows"
            f"{HINT_SEP}transformations are row-wise: one output row per input"
        )
    return out
