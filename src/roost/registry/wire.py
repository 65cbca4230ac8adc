"""JSON on the wire between roost clients and the team server: orjson where it is exact, the standard library where
it is not. Non-finite floats travel as the tokens `Infinity`, `-Infinity` and `NaN` (what Python's json writes and
reads); orjson would write them as null, so a value holding one is written by the standard library instead."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS
# An integer of 20+ digits (orjson reads those past 64 bits as floats): a JSON number starts the text or follows
# '[', ',' or ':' (and blanks). Digits after '.', 'e' or '-' inside a number are not matched: a small float such
# as 0.00010001000100010001 (a metric batch is full of them) no longer sends the whole text to the slow parser.
_LONG_INT = re.compile(rb"[\[,:]\s*-?[0-9]{20}")
_LONG_INT_FIRST = re.compile(rb"\s*-?[0-9]{20}")


def dumps(value: Any) -> bytes:
    """JSON of `value` (datetimes as ISO 8601; inf and nan as Infinity and NaN, which both ends read back)."""
    try:
        out = orjson.dumps(value, default=_default, option=_OPTS)
    except (orjson.JSONEncodeError, TypeError):
        return _slow(value)  # e.g. an int over 64 bits; the standard library's answer (or its TypeError)
    if b"null" in out and _has_nonfinite(value):  # orjson wrote a non-finite float as null
        return _slow(value)
    return out


def loads(raw: bytes | str) -> Any:
    """The value of JSON text (Infinity and NaN included)."""
    data = raw if isinstance(raw, bytes) else raw.encode()
    if _LONG_INT.search(data) or _LONG_INT_FIRST.match(data):
        return json.loads(raw)  # orjson reads integers past 64 bits as floats; Python's json keeps them exact
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # the tokens orjson refuses (Infinity, NaN), or its error for invalid JSON


def _slow(value: Any) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_nonfinite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nonfinite(v) for v in value)
    return False
