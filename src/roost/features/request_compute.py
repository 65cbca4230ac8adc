"""Running a request view's transformation: inputs typed as declared, outputs checked and cast to declared dtypes.

Offline (`training_set`) and online (`OnlineFetcher`) both call `request_array` on the request values and `compute`
on Arrow arrays of the declared types, so the transformation sees the same pandas frame, dtype for dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from roost.errors import RoostError

__all__ = ["request_array", "compute", "stored_list"]

_TIME_HINT = "send times as ISO-8601 strings with an offset ('2024-01-31T12:00:00Z') or tz-aware timestamps"


def _refuse(name: str, dtype: str, got: str, what: str, hint: str | None = None) -> RoostError:
    return RoostError(
        f"{what}: request field {name!r} is declared {dtype} but holds {got} values",
        hint=hint or f"send {dtype} values for {name!r}",
    )


def request_array(values: Any, dtype: str, name: str, what: str = "request data") -> Any:
    """Request values (list, numpy, pandas or Arrow) as an Arrow array of the field's declared dtype, else a
    RoostError naming the field: fractional numbers for an integer field, numbers for a string field and naive or
    unparseable times are refused, not guessed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from roost.features.definitions import arrow_type

    target = arrow_type(dtype)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        if isinstance(values, (str, bytes, int, float, bool)) or values is None:
            values = [values]
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise RoostError(f"{what}: request field {name!r} cannot be read as {dtype}: {exc}") from None
    typ = values.type
    if pa.types.is_dictionary(typ):
        values, typ = values.cast(typ.value_type), typ.value_type
    if pa.types.is_null(typ):
        return pa.nulls(len(values), target)
    if dtype in ("int64", "int32", "float64", "float32"):
        if pa.types.is_floating(typ) and dtype.startswith("int"):
            x = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
            bad = ~np.isnan(x) & ((x != np.trunc(x)) | ~np.isfinite(x))
            if bad.any():
                raise RoostError(
                    f"{what}: request field {name!r} ({dtype}) got the non-integral value {float(x[bad][0])!r}",
                    hint="send whole numbers",
                )
            values = pc.if_else(pc.is_nan(values), pa.scalar(None, typ), values)
        elif not (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            raise _refuse(name, dtype, str(typ), what)
    elif dtype == "bool" and not pa.types.is_boolean(typ):
        raise _refuse(name, dtype, str(typ), what, "send true/false")
    elif dtype == "string" and not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise _refuse(name, dtype, str(typ), what, "send text (a number's text is ambiguous: '1' or '1.0'?)")
    elif dtype == "timestamp":
        values = _times(values, name, what)
    try:
        return values.cast(target)
    except (pa.ArrowException, ValueError) as exc:
        raise RoostError(f"{what}: request field {name!r} cannot be cast to {dtype}: {exc}") from None


def _times(values: Any, name: str, what: str) -> Any:
    """Timestamps (tz-aware) or ISO-8601 strings with an offset as timestamp[us, UTC]; naive times are refused."""
    import pyarrow as pa

    typ = values.type
    if pa.types.is_timestamp(typ):
        if typ.tz is None:
            raise RoostError(f"{what}: request field {name!r} holds timezone-naive times", hint=_TIME_HINT)
        return values.cast(pa.timestamp(typ.unit, tz="UTC")).cast(pa.timestamp("us", tz="UTC"), safe=False)
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise _refuse(name, "timestamp", str(typ), what, _TIME_HINT)
    from datetime import datetime

    out: list[Any] = []
    for v in values.to_pylist():  # per value (fast for a request's few rows; one rule offline and online)
        if v is None:
            out.append(None)
            continue
        try:
            t = datetime.fromisoformat(v.strip())
        except ValueError:
            raise RoostError(
                f"{what}: request field {name!r} holds a value that is not an ISO-8601 time: {v!r}", hint=_TIME_HINT
            ) from None
        if t.tzinfo is None:
            raise RoostError(
                f"{what}: request field {name!r} holds a time without a UTC offset: {v!r}", hint=_TIME_HINT
            )
        out.append(t)
    return pa.array(out, pa.timestamp("us", tz="UTC"))


def _output(view: str, name: str, col: Any, dtype: str, strict: bool) -> Any:
    """One returned column as an Arrow array of the declared dtype (NaN = null), or a RoostError naming the field."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from roost.features.definitions import arrow_type

    try:
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        arr = col if isinstance(col, pa.Array) else pa.array(col, from_pandas=True)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise RoostError(f"request view {view!r}: output field {name!r} cannot be read: {exc}") from None
    typ, ok = arr.type, False
    if pa.types.is_null(typ):
        return pa.nulls(len(arr), arrow_type(dtype))
    if dtype in ("int64", "int32"):
        ok = pa.types.is_integer(typ)
        if pa.types.is_floating(typ) and not strict:  # nulls in float arithmetic: whole numbers are accepted
            x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
            ok = not bool((~np.isnan(x) & ((x != np.trunc(x)) | ~np.isfinite(x))).any())
            arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, typ), arr)
    elif dtype in ("float64", "float32"):
        ok = pa.types.is_floating(typ) or pa.types.is_integer(typ)
    elif dtype == "bool":
        ok = pa.types.is_boolean(typ)
    elif dtype == "string":
        ok = pa.types.is_string(typ) or pa.types.is_large_string(typ)
    elif dtype == "timestamp":
        ok = pa.types.is_timestamp(typ) and typ.tz is not None
    if not ok:
        raise RoostError(
            f"request view {view!r}: output field {name!r} is declared {dtype} but the transformation returned {typ}",
            hint=f"return {dtype} values for {name!r}, or declare the dtype it returns",
        )
    try:
        return arr.cast(arrow_type(dtype), safe=dtype != "timestamp")
    except (pa.ArrowException, ValueError) as exc:
        raise RoostError(f"request view {view!r}: output field {name!r} does not fit {dtype}: {exc}") from None


def compute(spec: dict[str, Any], fn: Any, inputs: dict[str, Any], n: int, *, strict: bool = False) -> dict[str, Any]:
    """The outputs of a request view ({field: Arrow array of its dtype}) from its inputs ({column: Arrow array of the
    declared type}, `n` rows each); `strict` (at apply) also refuses floats for integer fields."""
    import pandas as pd
    import pyarrow as pa

    view = spec["name"]
    frame = pa.table(inputs).to_pandas(split_blocks=True) if inputs else pd.DataFrame(index=pd.RangeIndex(n))
    try:
        res = fn(frame)
    except RoostError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's transformation may raise anything: reported with its view
        raise RoostError(
            f"request view {view!r}: transformation {spec['transform'].get('function')!r} failed on {n} rows: "
            f"{type(exc).__name__}: {exc}",
            hint="it takes a pandas DataFrame of the request fields and source features (missing source values are "
            "null/NaN) and returns a DataFrame (or dict of columns) with one row per input row",
        ) from None
    if isinstance(res, pd.DataFrame):
        cols: dict[Any, Any] = {c: res[c] for c in res.columns if c in spec["fields"]}
        got, rows = list(map(str, res.columns)), len(res)
    elif isinstance(res, dict):  # columns by position (a Series' index is not aligned)
        cols = {k: ([v] * n if np.ndim(v) == 0 else v) for k, v in res.items()}
        got, rows = list(map(str, res)), min((len(v) for v in cols.values()), default=n)
        rows = next((len(v) for v in cols.values() if len(v) != n), rows)
    else:
        raise RoostError(
            f"request view {view!r}: the transformation returned {type(res).__name__}, not a DataFrame",
            hint="return a pandas DataFrame (or a dict of columns) with the declared fields",
        )
    missing = [f for f in spec["fields"] if f not in cols]
    if missing:
        raise RoostError(
            f"request view {view!r}: the transformation did not return field(s) {missing}",
            hint=f"it returned {', '.join(got) or 'no columns'}",
        )
    if rows != n:
        raise RoostError(
            f"request view {view!r}: the transformation returned {rows} rows for {n}",
            hint="request-time transformations are row-wise: one output row per input row, in order",
        )
    return {f: _output(view, f, cols[f], dtype, strict) for f, dtype in spec["fields"].items()}


def stored_list(arr: Any, dtype: str) -> list[Any]:
    """An Arrow array of a dtype as the online store returns values (timestamps as epoch microseconds)."""
    import pyarrow as pa

    if dtype == "timestamp":
        return list(arr.cast(pa.int64()).to_pylist())
    return list(arr.to_pylist())
