"""One read-only SELECT: the check each SQL text handed to roost (`sql:`, `duckdb:`) passes before DuckDB runs."""

from __future__ import annotations

from roost.errors import RoostError


def check_select(query: str, what: str = "an sql: input") -> None:
    """Refuse anything but exactly one SELECT statement, as DuckDB's own parser reads the text (no COPY, ATTACH,
    INSTALL/LOAD, SET, PRAGMA, CREATE, EXPLAIN, and no second statement); text DuckDB cannot parse raises its
    duckdb.Error."""
    import duckdb

    statements = duckdb.extract_statements(query)  # a syntax error is DuckDB's, for the caller to word
    if len(statements) != 1:
        raise RoostError(
            f"{what} is one SELECT statement; this one has {len(statements)} statements",
            hint="remove everything after the first ';'",
        )
    st = statements[0]
    if st.type != duckdb.StatementType.SELECT:
        words = st.query.split()
        first = words[0].upper() if words else st.type.name
        raise RoostError(
            f"{what} is one SELECT statement, not {first} ({st.type.name})",
            hint="only SELECT (WITH ..., FROM ..., VALUES) runs; nothing is written, attached, loaded or set",
        )


__all__ = ["check_select"]
