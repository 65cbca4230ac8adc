"""What the compare page reads for up to MAX_COMPARE runs: the runs and their metric curves, one query per table.

Runs come from one `IN (...)` query per table (runs, params, latest metrics, tags), however many are compared;
metric histories from one query over the metric index, thinned in SQL to at most `max_points` real points per
curve (the first and last kept), so a run with a million points costs the page no more rows than a short one.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Integer, and_, func, literal, or_, select
from sqlalchemy import cast as sql_cast

from roost.errors import RoostError
from roost.registry.models import Metric
from roost.registry.store import RunDict, Store, default_store

MAX_COMPARE = 100  # runs on one compare page (the table has a column per run)
CHART_POINTS = 100_000  # points of all curves of a compare page together (each curve gets its share)
_CHUNK = 500  # ids per IN list (SQLite's bound-parameter limit is far above; PostgreSQL plans it as = ANY)

__all__ = ["MAX_COMPARE", "compare_ids", "compare_runs", "curve_points", "metric_series_many"]


def compare_ids(values: list[str], least: int = 2, most: int = MAX_COMPARE) -> list[str]:
    """Run ids from repeated/comma-separated query values, deduplicated in order; a RoostError outside least..most."""
    ids = list(dict.fromkeys(i.strip() for v in values for i in v.split(",") if i.strip()))
    if not least <= len(ids) <= most:
        raise RoostError(
            f"select {least} to {most} runs to compare (got {len(ids)})",
            hint="tick runs in the runs table, then press Compare (or ?runs=ID1,ID2)",
        )
    return ids


def compare_runs(ids: list[str], store: Store | None = None) -> list[RunDict]:
    """The runs for `ids` in order (full ids or unique prefixes, as get_run), read with IN queries, not per run."""
    st = store or default_store()
    found = st.runs_by_ids(ids)
    out: dict[str, RunDict] = {}
    for i in ids:
        r = found.get(i) or st.get_run(i)  # a prefix (rare: the runs table links full ids), or NotFoundError
        out.setdefault(r["run_id"], r)
    return list(out.values())


def curve_points(runs: int, asked: int = 2000) -> int:
    """Points per curve when `runs` runs are charted together: `asked`, within the page's CHART_POINTS budget."""
    return max(2, min(asked, max(100, CHART_POINTS // max(1, runs))))


def metric_series_many(
    run_ids: list[str], max_points: int = 2000, store: Store | None = None
) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """{run_id: {key: {"steps", "values"}}} of every metric of the runs, each curve thinned to max_points.

    A curve of n > m points keeps the points at positions floor(i (n-1) / (m-1)), i = 0..m-1 (in step, time,
    insertion order): evenly spread real points, the first and the last included. The thinning runs in SQL
    (row_number over the metric index), so only the kept rows leave the database.
    """
    st = store or default_store()
    m = max(2, int(max_points))
    out: dict[str, dict[str, dict[str, list[Any]]]] = {i: {} for i in dict.fromkeys(run_ids)}
    ids = list(out)
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
                select(inner.c.run_id, inner.c.key, inner.c.step, inner.c.value)
                .where(kept)
                .order_by(inner.c.run_id, inner.c.key, inner.c.rn)
            )
            for rid, key, step, value in s.execute(q):
                d = out[rid].setdefault(key, {"steps": [], "values": []})
                d["steps"].append(step)
                d["values"].append(value if math.isfinite(value) else None)
    return out
