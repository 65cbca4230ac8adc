"""Paging through runs while others are added, and the query plans of searches (SQLite EXPLAIN QUERY PLAN)."""

import pytest
from sqlalchemy import select

import roost
from roost.registry import api, filter_sql, query
from roost.registry.store import default_store
from roost.registry.tables import Run


def test_iter_runs_neither_skips_nor_repeats_a_run_while_runs_are_added(ws):
    before = []
    for i in range(12):
        with roost.start_run(experiment="pages", name=f"old{i}") as r:
            before.append(r.id)
    seen = []
    for n, run in enumerate(api.iter_runs(page=4)):
        seen.append(run["run_id"])
        if n % 4 == 3:  # after each page: new runs arrive (newest first: they sort before the cursor)
            for j in range(3):
                with roost.start_run(experiment="pages", name=f"new{n}-{j}"):
                    pass
    assert len(seen) == len(set(seen)), "a run was returned twice"
    assert set(before) <= set(seen), "a run that existed before paging was skipped"


def _plan(where: str | None, order_by: str | None) -> list[str]:
    st = default_store()
    q = select(Run)
    if where:
        q = q.where(filter_sql.compile_filter(where))
    q = query.apply_order(q, order_by).limit(50)
    sql = str(q.compile(st.engine, compile_kwargs={"literal_binds": True}))
    with st.engine.connect() as conn:
        return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.parametrize(
    ("where", "order_by", "probe"),
    [
        ("params.lr = 0.01", None, "params"),
        ("params.model = 'gbm'", None, "params"),
        ("metrics.auc >= 0.9", None, "latest_metrics"),
        ("tags.team = 'a'", None, "tags"),
        ("status = 'FINISHED'", None, "runs"),
        ("start_time > '2020-01-01'", None, "runs"),
        (None, "metrics.auc DESC", "latest_metrics"),
        ("params.model = 'gbm'", "metrics.auc DESC", "latest_metrics"),
    ],
)
def test_search_plans_use_indexes_and_never_scan_the_metric_history(ws, where, order_by, probe):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    for i in range(20):
        with roost.start_run(params={"lr": 0.01 * (i % 3), "model": "gbm"}, tags={"team": "ab"[i % 2]}) as r:
            r.log_metric("auc", i / 20)
    with default_store().engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    plan = _plan(where, order_by)
    text = "\n".join(plan)
    assert not any(" metrics " in f" {step} " and "latest" not in step for step in plan), text
    assert any(probe in step and "USING" in step and "INDEX" in step for step in plan), text
    if probe == "runs":  # status and time filters are index searches on runs, not a scan of it
        assert any(step.startswith("SEARCH runs USING INDEX") for step in plan), text
