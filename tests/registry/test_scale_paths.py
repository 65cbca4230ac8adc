"""The search paths that must stay quick at a million runs: their results against brute force, their query plans
(SQLite EXPLAIN QUERY PLAN, PostgreSQL EXPLAIN), and keyset pages read while another process adds runs."""

import os
import random
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpers import statements_sent
from roost.registry import api, query
from roost.registry.store import default_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEAMS = ("ads", "search", "growth")


def _fill(n: int, seed: int = 5, same_time_every: int = 7) -> list[dict]:
    """n finished runs in bulk: params model/depth, tags team/cohort, auc on most runs (not every 9th), loss history.

    Every `same_time_every`-th run shares its start time with the one before (ties that keyset paging must order).
    """
    st = default_store()
    eid = st.get_or_create_experiment("scale")
    rng = random.Random(seed)
    runs, params, tags, points, truth = [], [], [], [], []
    start = T0
    for i in range(n):
        if i % same_time_every:
            start = start + timedelta(seconds=rng.randint(1, 60))
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        r = {
            "id": rid,
            "experiment_id": eid,
            "name": f"r{i}",
            "status": "FAILED" if i % 10 == 3 else "FINISHED",
            "start_time": start,
            "end_time": start + timedelta(seconds=5),
            "heartbeat_at": start + timedelta(seconds=5),
            "artifact_uri": f"file:///x/{rid}",
        }
        runs.append(r)
        model, team, cohort = rng.choice(("gbm", "mlp")), TEAMS[i % 3], f"c{i % 40}"
        params += [(rid, "model", model), (rid, "depth", i % 5)]
        tags += [(rid, "team", team), (rid, "cohort", cohort)]
        auc = None if i % 9 == 0 else round(rng.choice((0.5, 0.7, rng.random())), 3)  # ties in auc too
        if auc is not None:
            points.append((rid, "auc", auc, 0, 1.0))
        points += [(rid, "loss", 1.0 / (s + 1), s, float(s)) for s in range(3)]
        truth.append({**r, "model": model, "depth": i % 5, "team": team, "cohort": cohort, "auc": auc})
    st.bulk_insert(runs, params, tags, points)
    return truth


def _default_key(r: dict) -> tuple:
    return (-r["start_time"].timestamp(), r["id"])


def _metric_order(rows: list[dict], desc: bool) -> list[str]:
    """Brute force: runs with auc by value (desc or asc), ties newest first then id; runs without auc last."""
    has = [r for r in rows if r["auc"] is not None]
    has.sort(key=lambda r: ((-r["auc"] if desc else r["auc"]), *_default_key(r)))
    rest = sorted((r for r in rows if r["auc"] is None), key=_default_key)
    return [r["id"] for r in has + rest]


@pytest.mark.parametrize("desc", [True, False])
def test_order_by_a_metric_pages_like_brute_force_with_runs_lacking_it_last(ws, desc):
    truth = _fill(90)
    want = _metric_order(truth, desc)
    order = "metrics.auc DESC" if desc else "metrics.auc ASC"
    st = default_store()
    for limit, offset in [(10, 0), (25, 60), (30, 75), (50, 85), (10, 200), (None, 0), (None, 30)]:
        got = [r["run_id"] for r in st.search_runs(order_by=order, limit=limit, offset=offset)]
        end = None if limit is None else offset + limit
        assert got == want[offset:end], (limit, offset)
    team_a = [r for r in truth if r["team"] == "ads"]
    got = [r["run_id"] for r in st.search_runs("tags.team = 'ads'", order_by=order, limit=20, offset=15)]
    assert got == _metric_order(team_a, desc)[15:35]


@pytest.mark.parametrize("selective_rows", [1, 2000])  # every condition as EXISTS, or every one as IN
@pytest.mark.parametrize(
    ("flt", "pred"),
    [
        ("tags.cohort = 'c7'", lambda r: r["cohort"] == "c7"),
        ("tags.team = 'ads' AND params.depth >= 3", lambda r: r["team"] == "ads" and r["depth"] >= 3),
        ("metrics.auc >= 0.7 OR params.model = 'gbm'", lambda r: (r["auc"] or 0) >= 0.7 or r["model"] == "gbm"),
        ("NOT tags.team = 'ads'", lambda r: r["team"] != "ads"),
        ("tags.team != 'ads' AND status = 'FAILED'", lambda r: r["team"] != "ads" and r["status"] == "FAILED"),
    ],
)
def test_both_forms_of_a_condition_find_the_runs_brute_force_finds(ws, monkeypatch, selective_rows, flt, pred):
    monkeypatch.setattr(query, "selective_rows", lambda runs: selective_rows)
    truth = _fill(60)
    want = [r["id"] for r in sorted((r for r in truth if pred(r)), key=_default_key)]
    assert [r["run_id"] for r in default_store().search_runs(flt, limit=None)] == want


def _statements(st, fn) -> list[tuple[str, object]]:
    """The ordered SELECTs of runs (with parameters) that fn() sends to the store: a page's runs, not the stale-run
    scan, a condition's capped count or the reads of a page's params/metrics/tags."""
    return statements_sent(
        st.engine, fn, lambda q: q.lstrip().upper().startswith("SELECT") and "FROM runs" in q and "ORDER BY" in q
    )


SEARCHES = [
    ("tags.cohort = 'c7'", None, "tags"),
    ("params.model = 'gbm'", None, "params"),
    ("metrics.auc >= 0.99", None, "latest_metrics"),
    ("status = 'FAILED'", None, "runs"),
    (f"start_time >= '{(T0 + timedelta(hours=1)).isoformat()}'", None, "runs"),
    (None, "metrics.auc DESC", "latest_metrics"),
    ("tags.team = 'ads'", "metrics.auc DESC", "latest_metrics"),
]


@pytest.mark.parametrize(("flt", "order", "probe"), SEARCHES)
def test_sqlite_search_statements_read_indexes_and_never_sort_or_scan_every_run(ws, flt, order, probe):
    st = default_store()
    if st.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's (PostgreSQL: the test below)")
    _fill(400)
    with st.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    stmts = _statements(st, lambda: st.search_runs(flt, order_by=order, limit=50))
    first = stmts[0]  # the page's run rows (the rest read params/metrics/tags of those 50 by run id)
    with st.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + first[0], first[1])]
    text = "\n".join(plan)
    assert not any(step.startswith("SCAN runs") and "INDEX ix_runs_start_time" not in step for step in plan), text
    if flt and ("cohort" in flt or "0.99" in flt):  # a condition few runs meet is read from its index
        assert not any(step.startswith("SCAN runs") for step in plan), text
    if not any(step.startswith("LIST SUBQUERY") for step in plan):  # a sort only of the few a rare condition meets
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, text  # never a sort of every matching run
    assert not any(" metrics " in f" {s} " and "latest" not in s for s in plan), text
    assert any(probe in s and "INDEX" in s for s in plan), text


@pytest.mark.parametrize(("flt", "order", "probe"), SEARCHES)
def test_postgresql_search_statements_use_indexes_never_the_metric_history(ws, flt, order, probe):
    st = default_store()
    if st.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL EXPLAIN")
    _fill(400)
    with st.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    stmts = _statements(st, lambda: st.search_runs(flt, order_by=order, limit=50))
    stmt, params = stmts[0]
    with st.engine.connect() as conn:
        # a 400-run table is read whole faster than through an index; this asks whether an index *can* serve it
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + stmt, params)]
    text = "\n".join(plan)
    assert "Seq Scan on metrics" not in text, text
    assert not any("Seq Scan" in s for s in plan), text
    # an index node names the table (Index Scan using x on t) or only its index under a Bitmap Heap Scan on t
    assert any(("Index" in s or "Bitmap Heap Scan" in s) and f" on {probe}" in s for s in plan), text


WRITER = textwrap.dedent(
    """
    import random, sys, time, uuid
    from datetime import UTC, datetime, timedelta
    from roost.registry.store import default_store
    st = default_store()
    eid = st.get_or_create_experiment("scale")
    rng = random.Random(int(sys.argv[1]))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    open(sys.argv[2], "w").close()  # started
    for b in range(int(sys.argv[3])):
        rows = []
        for _ in range(5):  # start times among the existing runs' (behind and ahead of the reader's cursor)
            rid, start = uuid.uuid4().hex, t0 + timedelta(seconds=rng.randint(0, 400 * 30))
            rows.append(dict(id=rid, experiment_id=eid, name="new", status="FINISHED", start_time=start,
                             end_time=start, heartbeat_at=start, artifact_uri="file:///x/" + rid))
        st.bulk_insert(rows)
        time.sleep(0.01)
    """
)


@pytest.mark.slow
def test_keyset_pages_read_while_another_process_adds_runs_never_skip_or_repeat_one(ws, tmp_path):
    truth = _fill(400)
    started = tmp_path / "started"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, "11", str(started), "60"], cwd=ws.root, env=dict(os.environ)
    )
    try:
        deadline = time.monotonic() + 120  # hang guard only
        while not started.exists() and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = []
        for run in api.iter_runs(page=9):
            seen.append(run)
            time.sleep(0.002)  # let the writer interleave between pages
        assert writer.wait(timeout=120) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    ids = [r["run_id"] for r in seen]
    assert len(ids) == len(set(ids)), "a run was returned twice"
    assert {r["id"] for r in truth} <= set(ids), "a run that existed before paging was skipped"
    keys = [(-r["start_time"].timestamp(), r["run_id"]) for r in seen]
    assert keys == sorted(keys), "pages are not in (start_time DESC, run_id) order"
    assert len(default_store().search_runs(limit=None)) == 400 + 60 * 5
