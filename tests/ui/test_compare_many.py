"""Compare of 100 runs: every run comes back, read with a fixed number of queries (IN lists, not one per run),
and metric histories thinned to real points, the first and last kept."""

from __future__ import annotations

import re
from typing import Any

import pytest

import roost
from helpers import is_select, statements_sent
from roost.registry.store import default_store


@pytest.fixture
def hundred(ws) -> list[str]:
    """101 runs with params, tags, a latest metric and a 4-point loss curve (one run with a long curve)."""
    ids = []
    for i in range(101):
        with roost.start_run(experiment="many", name=f"r{i}", params={"lr": 0.01 * (i % 7), "k": i}) as r:
            r.set_tags({"team": "ab"[i % 2]})
            r.log_metrics({"loss": 1.0 / (i + 1)}, step=0)
            for s in range(1, 4):
                r.log_metric("loss", 1.0 / (i + 1 + s), step=s)
            r.log_metric("auc", i / 100)
            ids.append(r.id)
    return ids


def _count_statements(fn: Any) -> int:
    return len(statements_sent(default_store().engine, fn))


def test_compare_page_of_100_runs_shows_all_with_queries_independent_of_the_count(hundred):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    client = TestClient(create_app())
    ids = hundred[:100]
    r = client.get("/compare?runs=" + ",".join(ids))
    assert r.status_code == 200, r.text[:500]
    assert "Compare 100 runs" in r.text
    table = r.text.split('id="param-diff"')[1].split("</table>")[0]
    assert len(re.findall(r'<th><a href="/runs/', table)) == 100
    for rid in ids:
        assert f'href="/runs/{rid}"' in r.text
    k_row = re.search(r"<th>k</th>(.*?)</tr>", table, re.S)
    assert k_row is not None
    assert re.findall(r'<td class="num">([^<]*)</td>', k_row.group(1)) == [str(i) for i in range(100)]
    few = _count_statements(lambda: client.get("/compare?runs=" + ",".join(ids[:10])))
    many = _count_statements(lambda: client.get("/compare?runs=" + ",".join(ids)))
    assert many <= few + 3, f"compare of 100 runs ran {many} statements, of 10 runs {few}: queries per run"


def test_compare_api_and_charts_return_all_100_runs_in_a_fixed_number_of_queries(hundred):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    client = TestClient(create_app())
    ids = hundred[:100]
    body = client.get("/api/compare?runs=" + ",".join(ids)).json()
    assert [r["run_id"] for r in body["runs"]] == ids
    st = default_store()
    for r in body["runs"][:5]:  # the same dict as get_run (brute force, one run at a time)
        one = st.get_run(r["run_id"])
        assert r["params"] == one["params"] and r["metrics"] == one["metrics"] and r["tags"] == one["tags"]
    charts = client.get("/api/charts?runs=" + ",".join(ids)).json()
    (loss,) = [c for c in charts["charts"] if c["key"] == "loss"]
    assert [s["id"] for s in loss["series"]] == ids
    for s in loss["series"]:
        hist = st.metric_history(s["id"], "loss")
        assert s["steps"] == [p["step"] for p in hist] and s["values"] == [p["value"] for p in hist]
    few = _count_statements(lambda: client.get("/api/charts?runs=" + ",".join(ids[:10])))
    many = _count_statements(lambda: client.get("/api/charts?runs=" + ",".join(ids)))
    assert many <= few + 3, f"charts of 100 runs ran {many} statements, of 10 runs {few}"


def test_compare_refuses_more_than_100_runs(hundred):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    client = TestClient(create_app())
    r = client.get("/api/compare?runs=" + ",".join(hundred))
    assert r.status_code == 400 and "select 2 to 100 runs" in r.json()["error"]
    assert client.get("/compare?runs=" + ",".join(hundred)).status_code == 400


def test_compare_resolves_unique_prefixes_like_get_run(hundred):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    client = TestClient(create_app())
    a, b = hundred[0], hundred[1]
    body = client.get(f"/api/compare?runs={a[:10]},{b}").json()
    assert [r["run_id"] for r in body["runs"]] == [a, b]
    assert client.get(f"/api/compare?runs={a},{'f' * 31}0").status_code == 404


def test_long_histories_are_thinned_to_real_points_keeping_first_and_last(ws):
    from roost.ui.compare import metric_series_many

    with roost.start_run(experiment="long") as r:
        for s in range(5000):
            r.log_metric("loss", 1.0 / (s + 1) + (s % 7) * 1e-3, step=s)
        long_id = r.id
    with roost.start_run(experiment="long") as r:
        for s in range(30):
            r.log_metric("loss", float(s), step=s)
        short_id = r.id
    got = metric_series_many([long_id, short_id], max_points=100)
    hist = {p["step"]: p["value"] for p in default_store().metric_history(long_id, "loss")}
    steps, values = got[long_id]["loss"]["steps"], got[long_id]["loss"]["values"]
    assert 90 <= len(steps) <= 100
    assert steps[0] == 0 and steps[-1] == 4999 and steps == sorted(steps)
    assert all(hist[s] == v for s, v in zip(steps, values)), "a thinned point is not a logged point"
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= 2 * (4999 / 99) + 1, gaps  # evenly spread, not bunched
    assert got[short_id]["loss"]["steps"] == list(range(30))  # a short series comes back whole


def _plans_of(fn: Any) -> list[list[str]]:
    """SQLite's query plan of every SELECT that fn runs on the store's engine."""
    eng = default_store().engine
    seen = statements_sent(eng, fn, is_select)
    with eng.connect() as conn:
        return [[r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q, p)] for q, p in seen]


def test_compare_reads_histories_through_the_run_index_never_a_scan_of_metrics(hundred):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    from roost.ui.compare import compare_runs, metric_series_many

    plans = _plans_of(lambda: (compare_runs(hundred[:100]), metric_series_many(hundred[:100], 50)))
    steps = [s for plan in plans for s in plan]
    assert any("metrics USING" in s and "ix_metrics_run_key_step" in s for s in steps), steps
    assert not any(s.startswith("SCAN") and (" metrics" in s or "latest_metrics" in s or " runs" in s) for s in steps)
