"""SQL text helpers shared by the feature modules: identifier and literal quoting, the -infinity timestamp."""

from __future__ import annotations

from datetime import datetime

NEG_INF = "'-infinity'::TIMESTAMPTZ"


__all__ = ["NEG_INF", "q", "lit", "ts_lit"]


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ts_lit(t: datetime) -> str:
    """An aware datetime as a DuckDB TIMESTAMPTZ literal."""
    return f"{lit(t.isoformat())}::TIMESTAMPTZ"
