"""Plain values of the registry: timestamps (UTC, aware), typed params as stored, and the heartbeat timeout."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from roost.errors import RoostError

HEARTBEAT_TIMEOUT_S = 300.0  # a RUNNING run whose heartbeat is older is marked LOST (ROOST_HEARTBEAT_TIMEOUT_S)

MAX_TIMEOUT_S = 100 * 365 * 86400.0  # a heartbeat timeout longer than this is a typo (and inf overflows a timedelta)


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which a RUNNING run counts as LOST (ROOST_HEARTBEAT_TIMEOUT_S, default 300)."""
    raw = os.environ.get("ROOST_HEARTBEAT_TIMEOUT_S")
    try:
        value = float(raw) if raw else HEARTBEAT_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT_S:  # also NaN and inf, which broke every read (timedelta overflow)
        raise RoostError(
            f"ROOST_HEARTBEAT_TIMEOUT_S={raw!r} is not a positive number of seconds", hint="seconds, e.g. 300"
        )
    return value


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """Return `dt` as timezone-aware UTC (SQLite hands back naive UTC)."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def typed_param(value: Any) -> tuple[str, str, float | None]:
    """Encode a param value as (text, type, numeric view)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", float(value)
    if isinstance(value, int):
        return str(value), "int", float(value)
    if isinstance(value, float):
        return repr(value), "float", value
    if value is None:
        return "None", "str", None
    return str(value), "str", None


def decode_param(text: str, typ: str) -> Any:
    """Decode a stored param into its Python type."""
    if typ == "int":
        return int(text)
    if typ == "float":
        return float(text)
    if typ == "bool":
        return text == "true"
    return text


def param_values(run_id: str, key: str, value: Any) -> tuple[str, str, str, str, float | None, str]:
    """The parameters of HotPath.param_sql (the run id twice: the row's, and the run whose start_time it copies)."""
    text, typ, num = typed_param(value)
    return (run_id, str(key), text, typ, num, run_id)


def param_rows(run_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the params table for a run's params (typed as typed_param encodes them)."""
    rows = []
    for k, v in params.items():
        text, typ, num = typed_param(v)
        rows.append({"run_id": run_id, "key": str(k), "value": text, "type": typ, "num": num})
    return rows
