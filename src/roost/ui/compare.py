"""What the compare page reads for up to MAX_COMPARE runs: the runs and their metric curves, one query per table.

Runs come from one `IN (...)` query per table (runs, params, latest metrics, tags), however many are compared;
metric histories from registry.curves, thinned in SQL to at most `max_points` real points per curve (the first
and last kept), so a run with a million points costs the page no more rows than a short one.
"""

from __future__ import annotations

from typing import Any

from roost.errors import RoostError
from roost.registry import curves
from roost.registry.store import RunDict, Store, default_store

MAX_COMPARE = 100  # runs on one compare page (the table has a column per run)
CHART_POINTS = 100_000  # points of all curves of a compare page together (each curve gets its share)

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
    st = store or default_store("the web UI")
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
    """{run_id: {key: {"steps", "values", "times"}}} of every metric of the runs, each curve thinned to max_points.

    A curve of n > m points keeps the points at positions floor(i (n-1) / (m-1)), i = 0..m-1 (in step, time,
    insertion order): evenly spread real points, the first and the last included. The thinning runs in SQL
    (row_number over the metric index), so only the kept rows leave the database.
    """
    return {
        rid: {k: {"steps": list(c.steps), "values": list(c.values), "times": list(c.times)} for k, c in got.items()}
        for rid, got in curves.metric_curves_many(run_ids, max_points, store).items()
    }
