"""The ASOF ordering key of feature rows: (event time, created time, source order), packed into one BIGINT.

DuckDB's ASOF join picks an arbitrary row among rows tied on the ordering key, so the key must be unique and
carry the tie-breakers. A struct key does that but sorts slower than a scalar one (bench/RESULTS.md); when the
view's time ranges, granularities and row count fit in 63 bits (the common case) the same order is packed exactly
into a BIGINT, else the struct key is used. Both give identical results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# granularities tried, coarsest first (microseconds): day, hour, minute, second, millisecond, microsecond
GRAINS = (86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000, 1_000, 1)
STRUCT_ENTITY = (
    "CASE WHEN {t} IS NULL THEN NULL ELSE "
    "struct_pack(a := {t}, b := 'infinity'::TIMESTAMPTZ, c := 9223372036854775807::BIGINT) END"
)
STRUCT_FEATURE = "struct_pack(a := __et, b := __ct, c := __rn::BIGINT)"
PACK = True  # tests switch packing off to check both keys against the same reference


__all__ = ["OrderKey", "order_key"]


@dataclass
class OrderKey:
    """SQL for the entity-side and feature-side ordering expressions of one view."""

    entity: str  # uses {t}: the entity time (TIMESTAMPTZ)
    feature: str  # over the view rows' __et, __ct, __rn
    packed: bool


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 0)


def _grain(flags: list[Any]) -> int:
    """The coarsest granularity all values are multiples of."""
    return next((g for g, ok in zip(GRAINS, flags) if ok), 1)


def order_key(con: Any, rows_sql: str, static: bool) -> OrderKey:
    """Choose the packed BIGINT key for a view's rows when it fits exactly, else the struct key."""
    struct = OrderKey(STRUCT_ENTITY, STRUCT_FEATURE, False)
    if not PACK:
        return struct
    e = "0" if static else "epoch_us(__et)"
    # the created-time tie-breaker as an offset from the event time (absolute for static views); NULL = oldest
    d = f"CASE WHEN isinf(__ct) THEN NULL ELSE epoch_us(__ct) - {e} END"
    grains = ", ".join(f"bool_and(__e % {g} = 0), bool_and(__d % {g} = 0)" for g in GRAINS)
    sql = (
        f"SELECT count(*), min(__e), max(__e), min(__d), max(__d), {grains} "
        f"FROM (SELECT {e} AS __e, {d} AS __d FROM ({rows_sql}))"
    )
    n, et_min, et_max, d_min, d_max, *flags = con.sql(sql).fetchall()[0]
    if not n:
        return struct
    g_et, g_d = _grain(flags[0::2]), _grain(flags[1::2])
    e_bits = _bits((et_max - et_min) // g_et)
    c_bits = 0 if d_min is None else _bits((d_max - d_min) // g_d + 1)
    r_bits = _bits(n)
    if e_bits + c_bits + r_bits > 63:
        return struct
    low = c_bits + r_bits
    d_code = "0" if d_min is None else f"coalesce(({d} - ({d_min})) // {g_d} + 1, 0)"
    tie = f"({d_code}) * {1 << r_bits} + __rn::BIGINT"
    t_us = "epoch_us({t})"
    if static or e_bits == 0:  # one event time for all rows: only the tie-breakers order them
        too_early = "" if static else f" OR {t_us} < {et_min}"
        return OrderKey(f"CASE WHEN {{t}} IS NULL{too_early} THEN NULL ELSE {(1 << low) - 1}::BIGINT END", tie, True)
    feature = f"((epoch_us(__et) - ({et_min})) // {g_et}) * {1 << low} + {tie}"
    entity = (
        f"CASE WHEN {{t}} IS NULL OR {t_us} < {et_min} THEN NULL "
        f"ELSE ((least({t_us}, {et_max}) - ({et_min})) // {g_et}) * {1 << low} + {(1 << low) - 1} END"
    )
    return OrderKey(entity, feature, True)
