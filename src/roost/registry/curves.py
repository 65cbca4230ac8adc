"""Metric histories for charts: every metric of a run, or of many runs at once, evenly thinned to a budget.

Many runs are read with one query per chunk of ids over the metric index, thinned in SQL to at most `max_points`
real points per curve (the first and last kept), so a run with a million points costs a chart no more rows than
a short one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Integer, and_, func, literal, or_, select
from sqlalchemy import cast as sql_cast

from roost.registry.store import Store, default_store
from roost.registry.tables import Metric

_CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit is far above; PostgreSQL plans it as = ANY)

__all__ = ["Curve", "metric_curves", "metric_curves_many"]


@dataclass(frozen=True)
class Curve:
    """One metric's points in step order; a NaN or infinite value is None; `times`: when each was logged (Unix s)."""

    steps: tuple[int, ...]
    values: tuple[float | None, ...]
    times: tuple[float, ...] = ()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _curve(pts: list[tuple[int, float | None, float]]) -> Curve:
    """A Curve from (step, value, time) points."""
    return Curve(tuple(p[0] for p in pts), tuple(p[1] for p in pts), tuple(p[2] for p in pts))


def metric_curves(run_id: str, max_points: int = 2000, store: Store | None = None) -> dict[str, Curve]:
    """Every metric of a run by key, evenly thinned to max_points (thinned here, after reading every point)."""
    st = store or default_store()
    with st.read() as s:
        rows = s.execute(
            select(Metric.key, Metric.step, Metric.value, Metric.timestamp)
            .where(Metric.run_id == run_id)
            .order_by(Metric.key, Metric.step, Metric.timestamp, Metric.id)
        ).all()
    points: dict[str, list[tuple[int, float | None, float]]] = {}
    for key, step, value, ts in rows:
        points.setdefault(key, []).append((step, _finite(value), float(ts)))
    out: dict[str, Curve] = {}
    for key, pts in points.items():
        n = len(pts)
        if n > max_points > 1:
            pts = [pts[i] for i in sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})]
        out[key] = _curve(pts)
    return out


def metric_curves_many(
    run_ids: list[str], max_points: int = 2000, store: Store | None = None
) -> dict[str, dict[str, Curve]]:
    """{run_id: {key: Curve}} of every metric of the runs, each curve thinned to max_points.

    A curve of n > m points keeps the points at positions floor(i (n-1) / (m-1)), i = 0..m-1 (in step, time,
    insertion order): evenly spread real points, the first and the last included. The thinning runs in SQL
    (row_number over the metric index), so only the kept rows leave the database.
    """
    st = store or default_store()
    m = max(2, int(max_points))
    points: dict[str, dict[str, list[tuple[int, float | None, float]]]] = {i: {} for i in dict.fromkeys(run_ids)}
    ids = list(points)
    with st.read() as s:
        for lo in range(0, len(ids), _CHUNK):
            chunk = ids[lo : lo + _CHUNK]
            order = (Metric.step, Metric.timestamp, Metric.id)
            part = (Metric.run_id, Metric.key)
            inner = (
                select(
                    Metric.run_id,
                    Metric.key,
                    Metric.step,
                    Metric.value,
                    Metric.timestamp,
                    (func.row_number().over(partition_by=part, order_by=order) - 1).label("rn"),
                    func.count().over(partition_by=part).label("n"),
                )
                .where(Metric.run_id.in_(chunk))
                .subquery()
            )
            rn, n = sql_cast(inner.c.rn, Integer), sql_cast(inner.c.n, Integer)
            # the smallest i whose floor(i (n-1) / (m-1)) >= rn; rn is kept when that floor is exactly rn
            i = (rn * (m - 1) + n - 2) // (n - 1)
            kept = or_(n <= literal(m), and_(n > literal(m), (i * (n - 1)) // (m - 1) == rn))
            q = (
                select(inner.c.run_id, inner.c.key, inner.c.step, inner.c.value, inner.c.timestamp)
                .where(kept)
                .order_by(inner.c.run_id, inner.c.key, inner.c.rn)
            )
            for rid, key, step, value, ts in s.execute(q):
                points[rid].setdefault(key, []).append((step, _finite(value), float(ts)))
    return {rid: {k: _curve(pts) for k, pts in curves.items()} for rid, curves in points.items()}
