"""Training sets: a point-in-time correct join of entity rows with feature views.

Each view is joined by `pit.join_view` (DuckDB reads, NumPy sorts and searches); a view whose packed sort key
would not be exact falls back to DuckDB ASOF joins (`pit_join_sql`), which are also the reference the tests
compare both against.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.errors import RoostError, closest
from roost.features import pit
from roost.features.checks import arrow_is_integer, check_mixed_datetimes, float_text_key, int_cast, nan_to_null
from roost.features.definitions import DTYPES, arrow_type
from roost.features.engines import get_engine
from roost.features.order import order_key
from roost.features.refs import Selection, resolve
from roost.features.sources import connect, q, refusals, run, view_rows

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


__all__ = ["as_arrow", "check_time_column", "is_spark_frame", "local_join", "micros", "pit_join_sql", "training_set"]


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


def pit_join_sql(sel: Selection, con: Any, root: Path, entities: str, time_col: str) -> str:
    """SQL joining the registered relation `entities` (with __rid) to each selected view as of `time_col`."""
    t = f"CAST({q(time_col)} AS TIMESTAMPTZ)"
    ent_cols = ["__rid", f"{t} AS __t"]
    joins: list[str] = []
    outs: list[str] = []
    for i, vs in enumerate(sel.views):
        v = f"__v{i}"
        on = []
        for j, (k, dtype) in enumerate(vs.keys.items()):
            ent_cols.append(f"CAST({q(k)} AS {DTYPES[dtype][0]}) AS __k{i}_{j}")
            on.append(f"__e.__k{i}_{j} = {v}.{q(k)}")
        rows = view_rows(con, vs.spec, vs.source, root)
        key = order_key(con, rows, static=not vs.source.get("event_time"))
        ent_cols.append(f"{key.entity.format(t=t)} AS __o{i}")
        cols = ", ".join([q(k) for k in vs.keys] + [q(f) for f in vs.fields] + ["__et", f"{key.feature} AS __o"])
        joins.append(
            f"ASOF LEFT JOIN (SELECT {cols} FROM ({rows})) AS {v} ON {' AND '.join(on)} AND __e.__o{i} >= {v}.__o"
        )
        ttl = vs.spec.get("ttl_seconds")
        static = not vs.source.get("event_time")
        for f, out in zip(vs.fields, vs.outputs):
            if ttl is None or static:
                outs.append(f"{v}.{q(f)} AS {q(out)}")
            else:
                us = int(round(float(ttl) * 1_000_000))
                outs.append(f"CASE WHEN {v}.__et >= __e.__t - to_microseconds({us}) THEN {v}.{q(f)} END AS {q(out)}")
    return (
        f"SELECT __e.__rid, {', '.join(outs)} FROM (SELECT {', '.join(ent_cols)} FROM {entities}) AS __e "
        + " ".join(joins)
        + " ORDER BY __e.__rid"
    )


def _cast_entity_keys(con: Any, ent: pa.Table, keys: dict[str, str]) -> pa.Table:
    """Cast entity key columns that are not integers to their integer key type, refusing fractional values
    (DuckDB's cast would join 3.2 to entity 3); re-register the relation when anything changed."""
    changed = False
    for k, dtype in keys.items():
        typ = ent.schema.field(k).type
        if dtype not in ("int64", "int32") or arrow_is_integer(typ):
            continue
        duck = str(run(con, f"DESCRIBE SELECT {q(k)} FROM __entities", "entity keys").fetchall()[0][1]).upper()
        what = f"entity frame: join key {k!r} ({dtype})"
        hint = f"pass whole numbers (e.g. df[{k!r}].astype('int64') once they are), or declare the key 'string'"
        sql = f"SELECT {int_cast(q(k), duck, DTYPES[dtype][0], what, hint)} AS k FROM __entities"
        col = run(con, sql, "entity keys").to_arrow_table().column("k")
        ent = ent.set_column(ent.column_names.index(k), k, col)
        changed = True
    if changed:
        con.unregister("__entities")
        con.register("__entities", ent)
    return ent


def is_spark_frame(obj: Any) -> bool:
    """True for a pyspark DataFrame (told by its class, without importing pyspark)."""
    return any(c.__module__.startswith("pyspark.") and c.__name__ == "DataFrame" for c in type(obj).__mro__)


def local_join(sel: Selection, ent: pa.Table, event_time: str, root: Path) -> dict[str, Any]:
    """The local engine's join: NumPy sort-search per view where an exact key fits, else DuckDB ASOF SQL."""
    con = connect(root)
    cols: dict[str, Any] = {}
    try:
        with refusals():
            con.register("__entities", ent)
            ent = _cast_entity_keys(con, ent, sel.join_keys)
            rest = list(sel.views)
            if pit.ENGINE != "sql":
                rest = []
                with pit.no_hugepages():
                    ents = pit.Entities(con, "__entities", ent, event_time)
                    for vs in sel.views:
                        got = pit.join_view(ents, vs, root)
                        if got is None:
                            log.debug("view %s: packed key does not fit, ASOF SQL instead", vs.name)
                            rest.append(vs)
                        else:
                            cols.update(got)
            if rest:
                sql = pit_join_sql(Selection(rest, {}, []), con, root, "__entities", event_time)
                log.debug("training_set SQL: %s", sql)
                res = run(con, sql, "point-in-time join").to_arrow_table()
                if res.num_rows != ent.num_rows:  # the join is one row per entity row by construction
                    raise RuntimeError(
                        f"point-in-time join returned {res.num_rows} rows for {ent.num_rows} entity rows"
                    )
                cols.update({out: res.column(out) for vs in rest for out in vs.outputs})
    finally:
        con.close()
    return cols


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
    ent = tbl.select(list(dict.fromkeys([*sel.join_keys, event_time])))
    ent = ent.set_column(ent.column_names.index(event_time), event_time, micros(ent.column(event_time)))
    ent = ent.append_column("__rid", pa.array(np.arange(tbl.num_rows, dtype=np.int64)))
    engine = get_engine(ws)
    log.debug("training_set on the %s engine: %d entity rows, %d views", engine.name, tbl.num_rows, len(sel.views))
    cols = engine.join(sel, ent, event_time, ws.root)
    out = tbl
    for name, dtype in sel.dtypes.items():
        out = out.append_column(name, nan_to_null(cols[name].cast(arrow_type(dtype))))
    if kind == "arrow":
        return out
    res = out.to_pandas()
    if not isinstance(entity_df, pa.Table):  # a pandas frame keeps its index: `df[c] = out[c]` aligns by label
        res.index = entity_df.index
    return res
