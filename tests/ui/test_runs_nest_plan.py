"""The runs page's nested runs under a page of parents are read from the parent index, also once SQLite has
statistics: with most runs top-level (parent NULL), sqlite_stat1's average rows per parent value made the planner
walk every run by start time instead (475 ms a page at 1M runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers import statements_sent
from roost.registry.store import default_store
from roost.ui import data

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(n: int, with_parent: int) -> None:
    st = default_store()
    eid = st.get_or_create_experiment("nest")
    runs = []
    for i in range(n):
        start = T0 + timedelta(seconds=i)
        runs.append(
            {
                "id": f"{i:032x}",
                "experiment_id": eid,
                "name": f"r{i}",
                "status": "FINISHED",
                "start_time": start,
                "end_time": start,
                "artifact_uri": "file:///x",
                "parent_run_id": f"{n - 1:032x}" if n - 1 - with_parent <= i < n - 1 else None,
            }
        )
    st.bulk_insert(runs[-1:] + runs[:-1])  # the parent first (foreign key)


@pytest.mark.parametrize("analyzed", [False, True])
def test_nested_runs_of_a_page_are_read_from_the_parent_index(ws, analyzed):
    st = default_store()
    if st.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    _fill(3000, with_parent=5)
    if analyzed:
        with st.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    sent = statements_sent(st.engine, lambda: data.runs_page(nest=True, per_page=20), lambda q: "parent_run_id IN" in q)
    assert sent  # one query per level of nesting
    with st.engine.connect() as conn:
        for sql, params in sent:
            plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
            assert any("ix_runs_parent_run_id" in s for s in plan), plan
            assert not any(s.startswith("SCAN runs") for s in plan), plan
    page = data.runs_page(nest=True, per_page=20)
    assert page.nested == 5 and [r["name"] for r in page.runs][:1] == ["r2999"]
