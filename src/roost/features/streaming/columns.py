"""A batch of flat text events decoded column by column into a typed Arrow table (the consumer's fast path).

One pass gathers each column's raw values; each column is then checked against a strict pattern and converted by
Arrow in one call. Only values whose meaning is certain take this path (plain integers, decimal floats, ISO 8601
times with seconds and a `Z` or `±HH:MM` offset, the usual bool words); anything else — a missing field, an empty
value, a JSON event, a naive time — returns None and the batch is decoded event by event (`events.decode`), which
gives each bad event its reason. Both paths give the same values for the events this one accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from roost.features.streaming.events import Schema

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["decode_columns"]

_PATTERNS = {
    "int": r"^[-]?[0-9]+$",
    "float": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$",
    "time": (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
        r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    ),
}
_BOOLS = {"true": True, "1": True, "t": True, "yes": True, "false": False, "0": False, "f": False, "no": False}


class _Slow(Exception):
    """This batch needs the per-event path."""


def _raw(fields: Sequence[Mapping[Any, Any]], name: str) -> list[Any]:
    """One column's raw values (bytes or text) from every event; _Slow when an event lacks it."""
    bname = name.encode()
    try:
        if isinstance(next(iter(fields[0])), bytes):
            return [f[bname] for f in fields]
        return [f[name] for f in fields]
    except (KeyError, StopIteration):
        raise _Slow from None


def _text(values: list[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        arr = pa.array(values)
        if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
            arr = arr.cast(pa.string())
    except (pa.ArrowException, TypeError, ValueError):
        raise _Slow from None
    if not pa.types.is_string(arr.type) or arr.null_count:
        raise _Slow
    return arr


def _checked(arr: pa.Array, kind: str) -> pa.Array:
    import pyarrow.compute as pc

    if not pc.all(pc.match_substring_regex(arr, _PATTERNS[kind])).as_py():
        raise _Slow
    return arr


def _convert(values: list[Any], dtype: str) -> pa.Array:
    """One column of `dtype` from its raw text values; _Slow when a value is not certain."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from roost.features.definitions import arrow_type

    arr = _text(values)
    target = arrow_type(dtype)
    try:
        if dtype == "string":
            return arr
        if dtype in ("int64", "int32"):
            return _checked(arr, "int").cast(target)
        if dtype in ("float64", "float32"):
            return _checked(arr, "float").cast(pa.float64()).cast(target)
        if dtype == "timestamp":
            return _checked(arr, "time").cast(target)
        if dtype == "bool":
            low = pc.utf8_lower(arr).to_pylist()
            return pa.array([_BOOLS[v] for v in low], target)
    except (pa.ArrowException, KeyError):
        raise _Slow from None
    raise _Slow


def decode_columns(fields: Sequence[Mapping[Any, Any]], schema: Schema) -> pa.Table | None:
    """The events' rows as a table (columns: keys, fields, event time, created time) or None: decode one by one."""
    import pyarrow as pa

    if not fields or any(f is None or len(f) == 0 for f in fields):
        return None
    types = {**schema.keys, **schema.fields, schema.event_time: "timestamp"}
    if schema.created_time:
        types[schema.created_time] = "timestamp"
    try:
        return pa.table({c: _convert(_raw(fields, c), d) for c, d in types.items()})
    except _Slow:
        return None
