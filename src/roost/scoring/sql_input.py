"""`sql:` inputs on the local engine: one read-only DuckDB SELECT over the named inputs, nothing else.

The query may come from a pipeline parameter or another user, so it runs with none of the caller's rights: DuckDB's
own parser must find exactly one SELECT statement (no COPY, ATTACH, INSTALL/LOAD, SET, PRAGMA, CREATE, EXPLAIN...),
and the connection is locked before the query is bound — file and network access off except for the named inputs'
own files (`allowed_paths`), extension loading off, Python replacement scans off (a DataFrame variable of the caller
is not a table), `lock_configuration` on so the query cannot undo any of it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from roost.datasets.sqlcheck import check_select
from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.scoring.sources import Source

TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
HINT = "an sql: input reads only its named inputs: --table NAME=PATH (Python: tables={'NAME': PATH}), then FROM NAME"


def check_table_name(name: str) -> None:
    """Refuse a named input whose name is not a plain SQL identifier (letters, digits, '_'; at most 63)."""
    if not TABLE_NAME.fullmatch(name):
        raise RoostError(
            f"table name {name[:80]!r} is not a plain identifier",
            hint="use letters, digits and '_' (not first), at most 63 characters, e.g. --table users=data/u.parquet",
        )


def parse_table_option(spec: str) -> tuple[str, str]:
    """Split a CLI `--table NAME=PATH` into (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep or not path.strip():
        raise RoostError(f"--table {spec[:80]!r} is not NAME=PATH", hint="e.g. --table users=data/users.parquet")
    check_table_name(name.strip())
    return name.strip(), path.strip()


def connect(source: Source) -> Any:
    """A DuckDB connection where the named inputs are views and nothing else outside can be reached (locked)."""
    import duckdb

    con = duckdb.connect(":memory:")
    allowed: list[str] = []
    try:
        for name, table in source.tables.items():
            files = [str(f.resolve()) for f in table.files]
            allowed += files
            rel = con.read_parquet(files) if table.kind == "parquet" else con.read_csv(files, header=True)
            rel.create_view(name)
        con.execute("SET allowed_paths = $1", [allowed])
        for setting in (
            "enable_external_access = false",
            "autoinstall_known_extensions = false",
            "autoload_known_extensions = false",
            "python_enable_replacements = false",
            "lock_configuration = true",
        ):
            con.execute(f"SET {setting}")
    except duckdb.Error as exc:
        con.close()
        raise RoostError(f"cannot open the named inputs of the sql: input: {exc}", hint=HINT) from exc
    return con


def relation(con: Any, source: Source) -> Any:
    """The query as a DuckDB relation on a locked connection; DuckDB's refusals become RoostErrors."""
    import duckdb

    query = source.query or ""
    try:
        check_select(query)
        return con.sql(query)
    except duckdb.PermissionException as exc:
        raise RoostError(f"SQL input may read only its named inputs: {exc}", hint=HINT) from exc
    except duckdb.CatalogException as exc:
        named = ", ".join(source.tables) or "none"
        raise RoostError(f"SQL input failed: {exc}", hint=f"named inputs: {named}. {HINT}") from exc
    except duckdb.Error as exc:
        raise RoostError(f"SQL input failed: {exc}", hint=f"check the query: {query[:200]}") from exc


__all__ = ["check_select", "check_table_name", "connect", "parse_table_option", "relation"]
