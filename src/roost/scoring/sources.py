"""Input sources for batch scoring: Parquet/CSV files (path, folder or glob) or a SQL query, and their fingerprint."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

SQL_PREFIX = "sql:"
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass
class Source:
    """What to score: files of one format, or one SQL query."""

    kind: str  # "parquet", "csv" or "sql"
    files: list[Path] = field(default_factory=list)
    query: str | None = None
    tables: dict[str, Source] = field(default_factory=dict)  # a query's named inputs (the only data it can read)

    def fingerprint(self) -> str:
        """A short hash of the input: file names, sizes and mtimes (or the query text and its named inputs')."""
        h = hashlib.sha256(self.kind.encode())
        if self.query is not None:
            h.update(self.query.encode())
        for name, table in sorted(self.tables.items()):
            h.update(json.dumps([name, table.fingerprint()]).encode())
        for f in self.files:
            st = f.stat()
            h.update(json.dumps([str(f.resolve()), st.st_size, st.st_mtime_ns]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        """One line for logs and run params."""
        if self.query is not None:
            named = "; ".join(f"{n}: {t.describe()}" for n, t in self.tables.items())
            return f"sql: {self.query[:200]}" + (f" (over {named})" if named else "")
        return f"{len(self.files)} {self.kind} file(s)"


def resolve_source(spec: str | Path | list[str] | list[Path], tables: dict[str, Any] | None = None) -> Source:
    """Parse `--input`: a file, a folder of Parquet/CSV files, a glob, a list of them, or `sql:SELECT ...` over the
    named inputs `tables` (name -> file, folder or glob)."""
    if isinstance(spec, str) and spec.strip().lower().startswith(SQL_PREFIX):
        query = spec.strip()[len(SQL_PREFIX) :].strip()
        if not query:
            raise RoostError(
                "empty SQL query", hint="--table users=data/users.parquet --input 'sql:SELECT * FROM users'"
            )
        return Source("sql", query=query, tables=_resolve_tables(tables or {}))
    if tables:
        raise RoostError(
            "named inputs (tables) are for an sql: input",
            hint="--input 'sql:SELECT ... FROM NAME', or leave out --table",
        )
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    files: list[Path] = []
    for s in specs:
        files.extend(_expand(str(s)))
    if not files:
        raise RoostError(f"no input files match {', '.join(map(str, specs))}", hint="pass a file, a folder or a glob")
    kinds = {FORMATS.get(f.suffix.lower()) for f in files}
    if None in kinds:
        bad = next(f for f in files if f.suffix.lower() not in FORMATS)
        raise RoostError(f"cannot read {bad}: unknown format", hint="inputs are .parquet or .csv files")
    if len(kinds) > 1:
        raise RoostError("inputs mix Parquet and CSV files", hint="score each format separately")
    return Source(str(kinds.pop()), files=sorted(set(files)))


def _resolve_tables(tables: dict[str, Any]) -> dict[str, Source]:
    """Each named input of an sql: input (file, folder or glob of one format) as a Source of files."""
    from roost.scoring.sql_input import check_table_name

    out: dict[str, Source] = {}
    for name, spec in tables.items():
        check_table_name(str(name))
        if isinstance(spec, str) and spec.strip().lower().startswith(SQL_PREFIX):
            raise RoostError(f"named input {name!r} is a query", hint="a named input is a file, a folder or a glob")
        out[str(name)] = resolve_source(spec if isinstance(spec, (str, Path, list)) else str(spec))
    return out


def _expand(s: str) -> list[Path]:
    """The data files a path, folder or glob names (hidden and `_`-prefixed files skipped, as Spark does)."""
    p = Path(s).expanduser()
    if p.is_dir():
        found = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS]
    elif p.is_file():
        return [p]
    else:
        found = [Path(f) for f in glob.glob(str(p), recursive=True) if Path(f).is_file()]
    return [f for f in found if not any(part.startswith((".", "_")) for part in f.name.split("/"))]


@contextlib.contextmanager
def read_guard(file: Path | str) -> Iterator[None]:
    """Turn a reader's failure on `file` (torn or non-Parquet file, empty CSV, bad value) into a RoostError."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, PermissionError):
            raise RoostError(f"cannot read {file}: permission denied", hint="check the file's permissions") from exc
        raise RoostError(
            f"cannot read {file}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="the file is empty, torn or not in the format its name says; fix or remove it",
        ) from exc


def parquet_schema_names(files: list[Path]) -> list[str]:
    """Column names of the first Parquet file."""
    import pyarrow.parquet as pq

    with read_guard(files[0]):
        return list(pq.read_schema(files[0]).names)


_OTHER_SEPARATORS = (";", "\t", "|")


def csv_schema(file: Path) -> Any:
    """The Arrow schema of a CSV file, inferred from its first block; a RoostError for a file that is not
    comma-separated (its header reads as one column holding ';', a tab or '|')."""
    import pyarrow.csv as pcsv

    with read_guard(file):
        schema = pcsv.open_csv(file).schema
    if len(schema.names) == 1:
        sep = next((s for s in _OTHER_SEPARATORS if s in schema.names[0]), None)
        if sep is not None:
            raise RoostError(
                f"{file} looks {sep!r}-separated (its header reads as one column {schema.names[0][:60]!r}); "
                "roost reads comma-separated CSV",
                hint=f"convert it to commas, or score it with --table t={file} --input 'sql:SELECT * FROM t' "
                "(DuckDB detects the delimiter)",
            )
    return schema


def file_schema(kind: str, file: Path) -> Any:
    """The Arrow schema of one Parquet or CSV input file."""
    if kind == "csv":
        return csv_schema(file)
    import pyarrow.parquet as pq

    with read_guard(file):
        return pq.read_schema(file)


def _kind(t: Any) -> str:
    """The family of an Arrow type for comparing files: number, text, time, null or the type itself."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_temporal(t):
        return "time"
    return "null" if pa.types.is_null(t) else str(t)


def check_files_agree(
    source: Source, first: Any, needed: list[str], keep: list[str], dtypes: dict[str, str]
) -> tuple[set[Path], Any]:
    """Check every later input file against the first one's schema `first`: the model and kept columns present,
    model columns numeric where the model wants numbers, kept columns of the same family (numbers, text, times).
    Returns the files whose kept columns have other types than the output's (the local engine casts those), and
    the schema to write: the first file's, with a kept column that is all-null there (an empty CSV column) typed
    as the first later file that has values. Linear in the number of columns: each file's schema is read into a
    dict once and the output schema is built once."""
    import pyarrow as pa

    head = source.files[0]
    first_types = dict(zip(first.names, first.types))
    target = {c: first_types[c] for c in keep}
    target_kind = {c: _kind(t) for c, t in target.items()}
    wanted = list(dict.fromkeys([*needed, *keep]))
    seen: dict[Path, dict[str, Any]] = {head: dict(target)}
    for f in source.files[1:]:
        schema = file_schema(source.kind, f)
        names = list(schema.names)
        types = dict(zip(names, schema.types))
        missing = [c for c in wanted if c not in types]
        if missing:
            raise RoostError(
                f"{f} lacks column(s) {missing} that {head.name} has (files scored together need one schema)",
                hint=f"{f.name} has {names[:20]}; fix it, or score the files separately",
            )
        check_types(schema, dtypes, where=f" in {f}")
        check_columns(names, needed, keep, [], where=str(f))
        mine = seen[f] = {c: types[c] for c in keep}
        for c in keep:
            a, b = target[c], mine[c]
            if a == b:
                continue
            kind_b = _kind(b)
            if target_kind[c] == "null":
                target[c], target_kind[c] = b, kind_b
            elif target_kind[c] != kind_b and kind_b != "null":
                raise RoostError(
                    f"column {c!r} is {b} in {f} but {a} in {head.name} (files scored together need one schema)",
                    hint=f"convert {c!r} in one of them, leave it out of --columns, or score the files separately",
                )
    retyped = {c: t for c, t in target.items() if t != first_types[c]}
    if retyped:
        fields = [fl.with_type(retyped[fl.name]) if fl.name in retyped else fl for fl in first]
        first = pa.schema(fields, metadata=first.metadata)
    return {f for f, types in seen.items() if types != target}, first


def sql_error(query: str, exc: Exception) -> RoostError:
    """A RoostError for a query DuckDB refused, quoting DuckDB's message."""
    return RoostError(f"SQL input failed: {exc}", hint=f"check the query: {query[:200]}")


_NUMERIC = ("float32", "float64", "int32", "int64", "bool")


def check_types(schema: Any, dtypes: dict[str, str], where: str = "") -> None:
    """Fail, naming the column, when a numeric model input is a text/binary column (it would score as NaN)."""
    import pyarrow as pa

    names = set(schema.names)
    for name, dtype in dtypes.items():
        if dtype not in _NUMERIC or name not in names:
            continue
        t = schema.field(name).type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
            raise RoostError(
                f"input column {name!r}{where} holds text ({t}) but the model expects {dtype}",
                hint=f"convert {name!r} to numbers before scoring (missing values may be empty or NaN)",
            )


def check_columns(
    available: list[str], needed: list[str], keep: list[str], outputs: list[str], where: str = "the input"
) -> None:
    """Fail early, with names, when inputs or kept columns are missing or repeated, or a kept column clashes with an
    output."""
    counts = Counter(available)
    twice = [c for c in dict.fromkeys([*needed, *keep]) if counts[c] > 1]
    if twice:
        raise RoostError(
            f"column {twice[0]!r} appears {counts[twice[0]]} times in {where}",
            hint="rename or drop the copies: a column must be named once",
        )
    missing = [c for c in needed if c not in counts]
    if missing:
        raise RoostError(f"input lacks model column(s) {missing}", hint=f"the input has {available[:20]}")
    missing = [c for c in keep if c not in counts]
    if missing:
        raise RoostError(f"--columns names unknown column(s) {missing}", hint=f"the input has {available[:20]}")
    out_names = set(outputs)
    clash = [c for c in keep if c in out_names]
    if clash:
        raise RoostError(f"kept column(s) {clash} clash with the prediction column", hint="leave them out of --columns")


def arrow_feed(batch: Any, names: list[str]) -> dict[str, Any]:
    """Model inputs as NumPy arrays from an Arrow batch/table (nulls become NaN / None)."""
    return {n: batch.column(n).to_numpy(zero_copy_only=False) for n in names}


__all__ = [
    "Source",
    "resolve_source",
    "parquet_schema_names",
    "csv_schema",
    "file_schema",
    "check_files_agree",
    "read_guard",
    "sql_error",
    "check_columns",
    "check_types",
    "arrow_feed",
    "SQL_PREFIX",
]
