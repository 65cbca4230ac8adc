"""Request-log time columns as instants: `_ts` and `_fs_event_time.<view>` read as timestamp[us, UTC] whatever unit
or type they were written in (timestamps of any unit or zone, dates, ISO-8601 text, epoch numbers in one unit)."""

from __future__ import annotations

from typing import Any

import numpy as np

from roost.errors import RoostError

__all__ = ["EVENT_PREFIX", "as_utc", "times_as_utc"]

EVENT_PREFIX = "_fs_event_time."


# epoch numbers: the unit whose range holds every value (1973-03 to 2286-11 in each), as microseconds per unit
_EPOCH_UNITS = (("s", 1e8, 1e10, 1e6), ("ms", 1e11, 1e13, 1e3), ("us", 1e14, 1e16, 1.0), ("ns", 1e17, 1e19, 1e-3))
_TIME_HINT = (
    "write request and event times as timestamps (any unit or zone; naive = UTC), ISO-8601 strings, "
    "or epoch numbers in one unit (s, ms, us or ns)"
)


def as_utc(arr: Any, name: str, path: str, other: str) -> Any:
    """A log time column as timestamp[us, UTC] whatever unit or type it came in (RoostError when it cannot be read).

    Staleness compares the online row's event time with the request time as numbers, so both must be one unit.
    """
    import pyarrow as pa

    utc_us = pa.timestamp("us", tz="UTC")
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr, typ = arr.cast(typ.value_type), typ.value_type
    if pa.types.is_null(typ):
        return pa.nulls(len(arr), utc_us)
    if pa.types.is_timestamp(typ):
        if typ.tz is None:  # naive = UTC, as everywhere in roost
            arr = arr.cast(pa.timestamp(typ.unit, tz="UTC"))
        return arr.cast(utc_us, safe=False)
    if pa.types.is_date(typ):
        return arr.cast(pa.timestamp("us")).cast(utc_us)
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        x = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        known = ~np.isnan(x)
        a = np.abs(x[known])
        for _unit, lo, hi, us in _EPOCH_UNITS:
            if a.size and np.all((a >= lo) & (a < hi)):
                vals = np.where(known, np.round(np.nan_to_num(x) * us), 0).astype(np.int64)
                return pa.array(vals, pa.int64(), mask=~known).cast(utc_us)
        if not a.size:
            return pa.nulls(len(arr), utc_us)
        raise RoostError(
            f"{path}: {name} holds {typ} values that are not epoch times in one unit (from {a.min():g} to "
            f"{a.max():g}); it is compared with {other}",
            hint=_TIME_HINT,
        )
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        import pandas as pd

        raw = pd.Series(arr.to_pylist(), dtype=object).replace("", None)
        got = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        bad = got.isna() & raw.notna()
        if bad.any():
            raise RoostError(
                f"{path}: {name} holds {typ} values that are not ISO-8601 times, e.g. {raw[bad].iloc[0]!r}; "
                f"it is compared with {other}",
                hint=_TIME_HINT,
            )
        return pa.array(got.dt.as_unit("us"), utc_us)
    raise RoostError(f"{path}: {name} holds {typ} values, not times; it is compared with {other}", hint=_TIME_HINT)


def times_as_utc(t: Any, path: str) -> Any:
    """A log batch with `_ts` and every `_fs_event_time.*` column as timestamp[us, UTC] (one unit to compare)."""
    types = {n: str(t.schema.field(n).type) for n in t.column_names if n == "_ts" or n.startswith(EVENT_PREFIX)}
    for i, name in enumerate(t.column_names):
        if name in types:
            other = ", ".join(f"{n} ({v})" for n, v in types.items() if n != name) or "the online event times"
            t = t.set_column(i, name, as_utc(t.column(i).combine_chunks(), name, path, other))
    return t
