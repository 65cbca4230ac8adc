"""What a source's event times cover, to explain an empty materialisation window ("the data ends at X")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

__all__ = ["event_time_range", "fmt_time"]


def event_time_range(src: dict[str, Any], root: Path) -> tuple[datetime, datetime] | None:
    """The (first, last) event time of a source (UTC); None when it has no event time, no rows, or can't be read."""
    from roost.features.sources import connect, from_clause, run, source_columns, time_expr

    if not src.get("event_time"):
        return None
    con = connect(root)
    try:
        cols = source_columns(con, src, root)
        et = time_expr(src, src["event_time"], cols)
        sql = f"SELECT min({et}), max({et}) FROM {from_clause(src, root)} AS __src WHERE {et} IS NOT NULL"
        lo, hi = run(con, sql, f"event-time range of source {src['name']!r}").fetchall()[0]
    except RoostError as e:  # only an explanation: a source the engine reads but DuckDB cannot is not an error here
        log.debug("no event-time range for source %s: %s", src.get("name"), e)
        return None
    finally:
        con.close()
    if lo is None or hi is None:
        return None
    return lo.astimezone(UTC), hi.astimezone(UTC)


def fmt_time(t: datetime | None) -> str:
    """A UTC time as ISO 8601 with 'Z' and no microseconds when they are zero ('-infinity' for None)."""
    if t is None:
        return "-infinity"
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
