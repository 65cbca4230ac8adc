"""Search against brute force for random filters (AND/OR/NOT over params, metrics, tags and attributes), every
run and keyset pages, on SQLite and PostgreSQL; and PostgreSQL's plan for a search made before any ANALYZE."""

import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from helpers import statements_sent
from roost.registry import query
from roost.registry.store import default_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Row = dict
Pred = Callable[[Row], bool]


def _fill(n: int, seed: int = 3, experiment: str = "rand") -> list[Row]:
    """n runs in bulk: params model (str) and depth (int, absent on every 7th), tag team, metric auc (absent on
    every 9th); every 5th run shares the start time of the one before (ties keyset paging must order)."""
    st = default_store()
    eid = st.get_or_create_experiment(experiment)
    rng = random.Random(seed)
    runs, params, tags, points, truth = [], [], [], [], []
    start = T0
    for i in range(n):
        if i % 5:
            start += timedelta(seconds=rng.randint(1, 30))
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        status = "FAILED" if i % 4 == 1 else "FINISHED"
        runs.append({"id": rid, "experiment_id": eid, "name": f"r{i}", "status": status, "start_time": start,
                     "end_time": start, "heartbeat_at": start, "artifact_uri": f"file:///x/{rid}"})  # fmt: skip
        model, team = rng.choice(("gbm", "mlp", "linear")), rng.choice(("ads", "search", "growth"))
        depth = None if i % 7 == 0 else rng.randint(0, 4)
        auc = None if i % 9 == 0 else round(rng.random(), 2)
        params.append((rid, "model", model))
        if depth is not None:
            params.append((rid, "depth", depth))
        tags.append((rid, "team", team))
        if auc is not None:
            points.append((rid, "auc", auc, 0, 1.0))
        truth.append({"id": rid, "start_time": start, "status": status, "model": model, "depth": depth,
                      "team": team, "auc": auc})  # fmt: skip
    st.bulk_insert(runs, params, tags, points)
    return truth


def _has(field: str, test: Pred) -> Pred:
    """A params/metrics/tags condition: only runs that have the field can match it (MLflow's rule too)."""
    return lambda r: r[field] is not None and test(r[field])


def _leaf(rng: random.Random) -> tuple[str, Pred]:
    kind = rng.randrange(6)
    if kind == 0:
        v = rng.choice(("gbm", "mlp", "linear"))
        return rng.choice(
            [
                (f"params.model = '{v}'", _has("model", lambda x: x == v)),
                (f"params.model != '{v}'", _has("model", lambda x: x != v)),
                (f"params.model LIKE '{v[0]}%'", _has("model", lambda x: x.startswith(v[0]))),
                (f"params.model NOT IN ('{v}', 'x')", _has("model", lambda x: x not in (v, "x"))),
            ]
        )
    if kind == 1:
        k = rng.randint(0, 4)
        ops: dict[str, Callable[[int], bool]] = {
            "=": lambda x: x == k, "!=": lambda x: x != k, "<": lambda x: x < k, ">=": lambda x: x >= k,
        }  # fmt: skip
        op = rng.choice(list(ops))
        return f"params.depth {op} {k}", _has("depth", ops[op])
    if kind == 2:
        v = rng.choice(("ads", "search", "growth"))
        return rng.choice(
            [
                (f"tags.team = '{v}'", _has("team", lambda x: x == v)),
                (f"tags.team IN ('{v}', 'growth')", _has("team", lambda x: x in (v, "growth"))),
            ]
        )
    if kind in (3, 4):
        t = round(rng.random(), 2)
        return rng.choice(
            [
                (f"metrics.auc >= {t}", _has("auc", lambda x: x >= t)),
                (f"metrics.auc < {t}", _has("auc", lambda x: x < t)),
            ]
        )
    s = rng.choice(("FAILED", "FINISHED"))
    return f"status = '{s}'", lambda r: r["status"] == s


def _expr(rng: random.Random, depth: int) -> tuple[str, Pred]:
    """A random filter and its brute-force predicate (AND binds tighter than OR; NOT is boolean negation)."""
    if depth == 0 or rng.random() < 0.3:
        return _leaf(rng)
    form = rng.randrange(4)
    a, pa = _expr(rng, depth - 1)
    if form == 3:
        return f"NOT ({a})", lambda r: not pa(r)
    b, pb = _expr(rng, depth - 1)
    if form == 2:
        return f"({a}) OR ({b})", lambda r: pa(r) or pb(r)
    return f"({a}) AND ({b})", lambda r: pa(r) and pb(r)


def _order(rows: list[Row]) -> list[str]:
    return [r["id"] for r in sorted(rows, key=lambda r: (-r["start_time"].timestamp(), r["id"]))]


@pytest.mark.parametrize("cap", [1, 2000])  # every condition counted as many (EXISTS) or as few (IN / INTERSECT)
def test_random_filters_find_and_page_what_brute_force_finds(ws, monkeypatch, cap):
    monkeypatch.setattr(query, "selective_rows", lambda runs: cap)
    truth = _fill(150)
    _fill(20, seed=9, experiment="other")  # runs of another experiment, never in the answers
    st = default_store()
    rng = random.Random(cap)
    for _ in range(25):
        flt, pred = _expr(rng, 3)
        want = _order([r for r in truth if pred(r)])
        got = [r["run_id"] for r in st.search_runs(flt, "rand", limit=None)]
        assert got == want, flt
        pages: list[str] = []
        after = None
        while True:  # keyset pages of 7: the same runs in the same order, none skipped or repeated
            page = st.search_runs(flt, "rand", limit=7, after=after)
            pages += [r["run_id"] for r in page]
            if len(page) < 7:
                break
            after = (page[-1]["start_time"], page[-1]["run_id"])
        assert pages == want, flt


def _removed_by_join_filters(plan: list[str]) -> int:
    return sum(int(m.group(1)) for line in plan if (m := re.search(r"Rows Removed by Join Filter: (\d+)", line)))


def test_postgresql_search_before_any_analyze_compares_no_cross_product(ws):
    """Right after a bulk of new runs PostgreSQL has no statistics yet (autovacuum analyzes up to a minute
    later); the search must not nest two conditions' index ranges. Before: 643 x 412 rows compared for 2,000
    runs in the bench (134 ms); here about 100 x 130 for 600 runs."""
    st = default_store()
    if st.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner")
    tables = ("runs", "params", "latest_metrics", "tags")
    with st.engine.begin() as conn:
        for t in tables:  # this test's own database: no autovacuum ANALYZE racing the check
            conn.exec_driver_sql(f"ALTER TABLE {t} SET (autovacuum_enabled = false)")
    truth = _fill(600)
    with st.engine.begin() as conn:  # as if never analyzed (the fixture's template was analyzed empty, or not)
        conn.exec_driver_sql(
            "DELETE FROM pg_statistic WHERE starelid IN (" + ", ".join(f"'{t}'::regclass" for t in tables) + ")"
        )
        conn.exec_driver_sql("UPDATE pg_class SET reltuples = -1 WHERE relname IN ('runs', 'params', 'latest_metrics')")
    flt = "params.model = 'gbm' AND metrics.auc >= 0.75"
    sent = statements_sent(
        st.engine,
        lambda: st.search_runs(flt, "rand", limit=None),
        lambda q: q.lstrip().upper().startswith("SELECT") and "FROM runs" in q and "ORDER BY" in q,
    )
    got = [r["run_id"] for r in st.search_runs(flt, "rand", limit=None)]
    assert got == _order([r for r in truth if r["model"] == "gbm" and r["auc"] is not None and r["auc"] >= 0.75])
    stmt, params = sent[0]
    with st.engine.connect() as conn:
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + stmt, params)]
    assert _removed_by_join_filters(plan) <= len(truth), "\n".join(plan)


def test_a_search_page_carries_each_run_as_get_run_reads_it(ws):
    """PostgreSQL builds a page's params/metrics/tags in the statement (JSON): the same values and types as the
    run-by-run read, floats that JSON writes as integers or as strings (infinities) included."""
    st = default_store()
    eid = st.get_or_create_experiment("kinds")
    weird = [1.0, 0.1, -2.5e-300, 1e300, 1e-7, float("inf"), float("-inf"), 3.0]  # NaN is refused at logging
    rows, params, tags, points = [], [], [], []
    for i, v in enumerate(weird):
        rid = uuid.UUID(int=i + 1).hex
        start = T0 + timedelta(seconds=i)
        rows.append({"id": rid, "experiment_id": eid, "name": f"k{i}", "status": "FINISHED", "start_time": start,
                     "end_time": start, "heartbeat_at": start, "artifact_uri": f"file:///x/{rid}"})  # fmt: skip
        params += [(rid, "i", i), (rid, "f", i / 4), (rid, "b", i % 2 == 0), (rid, "s", f"v{i}")]
        if i % 3:
            tags.append((rid, "t", f"tag {i}"))
        points += [(rid, "m", v, 0, 1.0), (rid, "n", float(i), 0, 1.0)]
    rows.append({**rows[0], "id": uuid.UUID(int=99).hex, "name": "bare", "start_time": T0 - timedelta(seconds=1)})
    st.bulk_insert(rows, params, tags, points)
    page = st.search_runs(None, "kinds", limit=None)
    assert [r["name"] for r in page] == [f"k{i}" for i in reversed(range(len(weird)))] + ["bare"]
    for got in page:
        assert _typed(got) == _typed(st.get_run(got["run_id"]))
        assert all(type(v) is float for v in got["metrics"].values())


def _typed(run: dict) -> dict:
    """A run dict with each value as its repr (1 and 1.0 differ, and so do True and 1), key order aside."""
    return {
        k: sorted((kk, repr(vv)) for kk, vv in v.items()) if isinstance(v, dict) else repr(v) for k, v in run.items()
    }
