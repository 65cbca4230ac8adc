"""The local offline engine: DuckDB reads and NumPy sorts in this process (the default engine).

`training_set` and `materialize` reach it through `roost.features.engines.get_engine`; it imports neither.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.features import pit
from roost.features.checks import arrow_is_integer, int_cast
from roost.features.definitions import DTYPES
from roost.features.order import order_key
from roost.features.refs import Selection
from roost.features.sources import connect, q, refusals, run, view_rows

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

__all__ = ["LocalEngine", "latest_sql", "local_join", "pit_join_sql"]


class LocalEngine:
    """DuckDB + NumPy in this process (`roost.features.pit`, ASOF SQL fallback)."""

    name = "local"
    chunked = False

    def join(self, sel: Selection, ent: pa.Table, event_time: str, root: Path) -> dict[str, Any]:
        """Output column -> values for each entity row (see `local_join`)."""
        return local_join(sel, ent, event_time, root)

    def latest(
        self, spec: dict[str, Any], src: dict[str, Any], root: Path, start: datetime | None, end: datetime | None
    ) -> Iterator[pa.Table]:
        """One table: DuckDB's latest row per entity."""
        con = connect(root)
        try:
            rows = view_rows(con, spec, src, root, start=start, end=end)
            with refusals():
                sql = latest_sql(rows, list(spec["join_keys"]), spec["fields"])
                tbl = run(con, sql, f"materialize {spec['name']!r}").to_arrow_table()
        finally:
            con.close()
        yield tbl


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


def latest_sql(rows_sql: str, keys: list[str], fields: dict[str, str]) -> str:
    """The latest row per entity: greatest (event time, created time, source order)."""
    part = ", ".join(q(k) for k in keys)
    cols = [q(k) for k in keys] + [q(f) for f in fields]
    cols += [
        "CASE WHEN isinf(__et) THEN NULL ELSE epoch_us(__et) END AS __et",
        "CASE WHEN isinf(__ct) THEN NULL ELSE epoch_us(__ct) END AS __ct",
    ]
    return (
        f"SELECT {', '.join(cols)} FROM ({rows_sql}) "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY __et DESC, __ct DESC, __rn DESC) = 1"
    )
