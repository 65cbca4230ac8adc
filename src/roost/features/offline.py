"""Training sets: a point-in-time correct join of entity rows with feature views.

Each view is joined by `pit.join_view` (DuckDB reads, NumPy sorts and searches); a view whose packed sort key
would not be exact falls back to DuckDB ASOF joins (`pit_join_sql`), which are also the reference the tests
compare both against.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError, closest
from roost.features.checks import check_mixed_datetimes, float_text_key, nan_to_null
from roost.features.definitions import arrow_type
from roost.features.engines import get_engine
from roost.features.local_engine import local_join, pit_join_sql
from roost.features.refs import resolve

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


__all__ = [
    "as_arrow",
    "check_time_column",
    "is_spark_frame",
    "local_join",
    "micros",
    "pit_join_sql",
    "request_columns",
    "training_set",
]


def as_arrow(df: Any, what: str = "entity frame") -> pa.Table:
    """Accept a pandas DataFrame or an Arrow table; return an Arrow table."""
    import pyarrow as pa

    if isinstance(df, pa.Table):
        return df
    try:
        import pandas as pd

        if isinstance(df, pd.DataFrame):
            check_mixed_datetimes(df, what)
            return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise RoostError(f"{what} cannot be converted to Arrow: {exc}") from exc
    raise RoostError(f"{what} must be a pandas DataFrame or a pyarrow Table, got {type(df).__name__}")


def check_time_column(tbl: pa.Table, col: str, what: str = "entity frame") -> None:
    """Raise unless `col` exists and holds tz-aware timestamps."""
    import pyarrow as pa

    if col not in tbl.column_names:
        near = closest(col, tbl.column_names)
        raise RoostError(
            f"{what} has no event-time column {col!r}",
            hint=(f"did you mean {near!r}? pass event_time={near!r}; " if near else "")
            + f"columns: {', '.join(tbl.column_names)}",
        )
    typ = tbl.schema.field(col).type
    if not pa.types.is_timestamp(typ):
        raise RoostError(
            f"{what}: event-time column {col!r} has type {typ}, not a timestamp",
            hint="convert it, e.g. pd.to_datetime(df[col], utc=True)",
        )
    if typ.tz is None:
        raise RoostError(
            f"{what}: event-time column {col!r} is timezone-naive while feature times are tz-aware "
            "(a naive/aware mix is an error)",
            hint=f"localise it: df[{col!r}] = df[{col!r}].dt.tz_localize('UTC')",
        )


def micros(col: Any) -> Any:
    """Timestamps floored to microseconds (the resolution times are compared at; DuckDB would round ns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = col.type
    if typ.unit == "ns":
        col = pc.floor_temporal(col, unit="microsecond").cast(pa.timestamp("us", tz=typ.tz))
    return col


def is_spark_frame(obj: Any) -> bool:
    """True for a pyspark DataFrame (told by its class, without importing pyspark)."""
    return any(c.__module__.startswith("pyspark.") and c.__name__ == "DataFrame" for c in type(obj).__mro__)


def request_columns(sel: Any, tbl: pa.Table, cols: dict[str, Any], root: Any) -> dict[str, Any]:
    """The outputs of the selection's request views for the rows of `tbl` (request fields = its columns), from the
    joined stored features in `cols`."""
    from roost.features.loader import load_function
    from roost.features.request_compute import compute, request_array

    out: dict[str, Any] = {}
    dtypes = {o: vs.spec["fields"][f] for vs in sel.views for f, o in zip(vs.fields, vs.outputs)}
    for rs in sel.requests:
        inputs = {f: request_array(tbl.column(f), t, f, "entity frame") for f, t in rs.request.items()}
        for name, col in rs.sources.items():
            inputs[name] = nan_to_null(cols[col].cast(arrow_type(dtypes[col])))
            if hasattr(inputs[name], "combine_chunks"):
                inputs[name] = inputs[name].combine_chunks()
        got = compute(rs.spec, load_function(rs.spec["transform"], root), inputs, tbl.num_rows)
        out.update({o: got[f] for f, o in zip(rs.fields, rs.outputs)})
    return out


def training_set(
    entity_df: Any,
    features: list[str] | str,
    *,
    event_time: str = "event_time",
    full_names: bool = False,
    output: str | None = None,
) -> Any:
    """The entity rows, unchanged and in order, plus each feature's value as of the row's time (null if none)."""
    # pandas in -> pandas out, Arrow in -> Arrow out, unless output='pandas'|'arrow'; semantics: docs/features.md
    import numpy as np
    import pyarrow as pa

    from roost import workspace

    kind = output or ("arrow" if isinstance(entity_df, pa.Table) else "pandas")
    if kind not in ("pandas", "arrow"):
        raise RoostError(f"output must be 'pandas' or 'arrow', got {output!r}")
    ws = workspace.current()
    if is_spark_frame(entity_df):  # a Spark DataFrame in: a Spark DataFrame out, nothing collected
        from roost.features.spark_engine import SparkEngine

        return SparkEngine(ws.offline).training_frame(entity_df, features, event_time, full_names)
    sel = resolve(features, full_names=full_names)
    tbl = as_arrow(entity_df)
    check_time_column(tbl, event_time)
    missing = [k for k in sel.join_keys if k not in tbl.column_names]
    if missing:
        raise RoostError(
            f"entity frame lacks join key column(s) {missing} needed by {', '.join(v.name for v in sel.views)}",
            hint=f"entity frame columns: {', '.join(tbl.column_names)}",
        )
    for k, dtype in sel.join_keys.items():
        if dtype == "string" and pa.types.is_floating(tbl.schema.field(k).type):
            raise float_text_key("entity frame", k, str(tbl.schema.field(k).type))
    clash = sorted(set(sel.dtypes) & set(tbl.column_names))
    if clash:
        raise RoostError(
            f"feature column(s) {clash} already exist in the entity frame",
            hint="rename those entity columns, or pass full_names=True for 'view__field' names",
        )
    missing = [f for f in sel.request_fields if f not in tbl.column_names]
    if missing:
        needs = ", ".join(r.name for r in sel.requests if set(r.request) & set(missing))
        raise RoostError(
            f"entity frame lacks request field column(s) {missing} needed by request view(s) {needs}",
            hint="request-time features are computed from the entity frame's columns: add them (the values the "
            f"requests carried); entity frame columns: {', '.join(tbl.column_names)}",
        )
    ent = tbl.select(list(dict.fromkeys([*sel.join_keys, event_time])))
    ent = ent.set_column(ent.column_names.index(event_time), event_time, micros(ent.column(event_time)))
    ent = ent.append_column("__rid", pa.array(np.arange(tbl.num_rows, dtype=np.int64)))
    engine = get_engine(ws)
    log.debug("training_set on the %s engine: %d entity rows, %d views", engine.name, tbl.num_rows, len(sel.views))
    cols = engine.join(sel, ent, event_time, ws.root) if sel.views else {}
    if sel.requests:
        cols.update(request_columns(sel, tbl, cols, ws.root))
    out = tbl
    for name, dtype in sel.dtypes.items():
        out = out.append_column(name, nan_to_null(cols[name].cast(arrow_type(dtype))))
    if kind == "arrow":
        return out
    res = out.to_pandas()
    if not isinstance(entity_df, pa.Table):  # a pandas frame keeps its index: `df[c] = out[c]` aligns by label
        res.index = entity_df.index
    return res
