"""The runs page's counts and sorted pages at scale (roost.registry.paging): exact up to the cap, checked against a
brute-force count of the generated runs; a capped count reads a bounded number of rows (SQLite VM steps, not
time); sorted pages are index walks (no full sort) that page through every run exactly once, in apply_order's
order, across the segments (runs with the field, then without)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from helpers import is_select, statements_sent
from roost.registry import api, paging, query
from roost.registry.store import default_store
from roost.registry.tables import Run
from roost.ui import data

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("gbm", "mlp", "linear")
TEAMS = ("ads", "search", "risk")


def _populate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n runs in bulk over 2 experiments: model/depth/lr params (some text depths), team tag (some missing), auc (some
    missing, ties); returns the generated runs (the brute-force reference)."""
    rng = random.Random(seed)
    st = default_store()
    eids = [st.get_or_create_experiment(f"e{k}") for k in range(2)]
    runs, params, tags, points, out = [], [], [], [], []
    for i in range(n):
        rid = f"{rng.getrandbits(128):032x}"
        start = T0 + timedelta(seconds=10 * i + (0 if i % 17 else -10))  # a few equal start times (ties)
        r: dict[str, Any] = {
            "id": rid,
            "start": start,
            "exp": i % 2,
            "status": "FAILED" if i % 11 == 0 else "FINISHED",
            "model": rng.choice(MODELS),
            "depth": rng.choice([3, 5, 8, "deep"]),
            "team": rng.choice(TEAMS) if i % 9 else None,
            "auc": round(rng.choice([0.5, 0.75, 0.9, rng.random()]), 6) if i % 7 else None,
        }
        out.append(r)
        runs.append(
            {
                "id": rid,
                "experiment_id": eids[r["exp"]],
                "name": f"run-{i}",
                "status": r["status"],
                "start_time": start,
                "end_time": start + timedelta(seconds=5),
                "heartbeat_at": start + timedelta(seconds=5),
                "user": "t",
                "source": "t",
                "artifact_uri": f"file:///nowhere/{rid}",
            }
        )
        params += [(rid, "model", r["model"]), (rid, "depth", r["depth"])]
        if r["team"] is not None:
            tags.append((rid, "team", r["team"]))
        if r["auc"] is not None:
            points.append((rid, "auc", r["auc"], 0, start.timestamp()))
    st.bulk_insert(runs, params, tags, points)
    return out


def _archive(runs: list[dict[str, Any]], every: int) -> set[str]:
    ids = {r["id"] for r in runs[::every]}
    api.archive_runs(run_ids=sorted(ids), force=True)
    return ids


FILTERS: dict[str, Any] = {
    "": lambda r: True,
    "params.model = 'gbm'": lambda r: r["model"] == "gbm",
    "tags.team = 'ads'": lambda r: r["team"] == "ads",
    "metrics.auc >= 0.75": lambda r: r["auc"] is not None and r["auc"] >= 0.75,
    "params.model = 'mlp' AND tags.team != 'risk' AND params.depth >= 5": lambda r: (
        r["model"] == "mlp" and r["team"] not in (None, "risk") and not isinstance(r["depth"], str) and r["depth"] >= 5
    ),
    "status = 'FAILED'": lambda r: r["status"] == "FAILED",
}


@pytest.mark.parametrize("cap", [30, 10_000])
def test_counts_are_exact_up_to_the_cap_and_say_so_beyond(ws, cap):
    runs = _populate(400)
    archived = _archive(runs, 13)
    for flt, pred in FILTERS.items():
        for with_archived in (False, True):
            want = sum(1 for r in runs if pred(r) and (with_archived or r["id"] not in archived))
            got = data.count_runs(flt or None, cap=cap, archived=with_archived)
            expect = paging.Count(want) if want <= cap else paging.Count(cap, exact=False)
            assert got == expect, (flt, with_archived, got, want)
            assert data.count_runs(flt or None, cap=None, archived=with_archived) == paging.Count(want)
        in_e1 = sum(1 for r in runs if pred(r) and r["exp"] == 1 and r["id"] not in archived)
        assert data.count_runs(flt or None, ["e1"], cap=None) == paging.Count(in_e1)
    e1 = sum(1 for r in runs if r["exp"] == 1 and r["id"] not in archived)
    with default_store().engine.connect() as conn:  # the experiments page: the scope alone narrows the count
        (eid,) = conn.execute(select(Run.experiment_id).where(Run.name == "run-1")).scalars()
        got = paging.capped_count(conn, [Run.lifecycle_stage == "active"], cap=cap, experiment_ids=[eid])
    assert got == (paging.Count(e1) if e1 <= cap else paging.Count(cap, exact=False))


def _brute_order(runs: list[dict[str, Any]], field: str, desc: bool) -> list[str]:
    """apply_order's order by hand: runs with the field by value (params: numbers, then text), ties and the runs
    without it newest first, then by id."""

    def newest(r: dict[str, Any]) -> tuple[float, str]:
        return (-r["start"].timestamp(), r["id"])

    def value_key(r: dict[str, Any]) -> tuple[Any, ...]:
        v = r[field]
        if isinstance(v, str) and field == "depth":
            return (1, 0.0, v)
        return (0, float(v), str(v)) if field in ("depth", "auc") else (0, 0.0, v)

    have = [r for r in runs if r[field] is not None]
    without = sorted((r for r in runs if r[field] is None), key=newest)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in have:
        groups.setdefault(value_key(r), []).append(r)
    ordered = []
    for k in sorted(groups):
        ordered.append(sorted(groups[k], key=newest))
    if desc:  # value descending within each kind (numbers before text), ties still newest first
        nums = [g for k, g in zip(sorted(groups), ordered) if k[0] == 0][::-1]
        texts = [g for k, g in zip(sorted(groups), ordered) if k[0] == 1][::-1]
        ordered = nums + texts
    return [r["id"] for g in ordered for r in g] + [r["id"] for r in without]


def every_page(order: str, per_page: int) -> tuple[list[str], data.RunsPage]:
    """The run ids of every page of the runs page sorted by `order`, first to last, and the last page."""
    seen: list[str] = []
    page = 1
    while True:
        pg = data.runs_page(order_by=order, page=page, per_page=per_page)
        seen += [r["run_id"] for r in pg.runs]
        if not pg.has_next:
            return seen, pg
        page += 1


@pytest.mark.parametrize(
    ("order", "field", "desc"),
    [
        ("metrics.auc DESC", "auc", True),
        ("metrics.auc ASC", "auc", False),
        ("params.depth ASC", "depth", False),
        ("params.depth DESC", "depth", True),
        ("tags.team ASC", "team", False),
    ],
)
def test_sorted_pages_list_every_run_once_in_order_across_segments(ws, order, field, desc):
    runs = _populate(150)
    want = _brute_order(runs, field, desc)
    seen, pg = every_page(order, 17)
    assert seen == want
    assert pg.total == len(runs) and pg.total_exact
    with default_store().read() as s:  # apply_order (one sorted query) agrees on the same store
        assert list(s.scalars(query.apply_order(select(Run.id), order))) == want


def _vm_steps(fn: Any) -> int:
    """SQLite virtual-machine steps (in units of 100) that fn's queries take on the store's connections."""
    st = default_store()
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    with st.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.set_progress_handler(tick, 100)
        try:
            fn(conn)
        finally:
            raw.set_progress_handler(None, 100)
    return steps[0]


def test_a_capped_count_reads_a_bounded_number_of_rows(ws):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("SQLite's progress handler counts the work")
    runs = _populate(3000)
    common = [Run.lifecycle_stage == "active", Run.status == "FINISHED"]
    capped = _vm_steps(lambda c: paging.capped_count(c, common, cap=100, window=None))
    full = _vm_steps(lambda c: paging.capped_count(c, common, cap=10**9, window=None))
    assert capped * 5 < full, (capped, full)  # ~100 of ~2,700 matching rows read, not all
    # a rare condition no index answers (10% of runs) never reaches the cap: the window bounds the rows read
    rare = [Run.lifecycle_stage == "active", Run.name.like("%3")]
    want = sum(1 for i in range(len(runs)) if str(i).endswith("3"))
    windowed = _vm_steps(lambda c: paging.capped_count(c, rare, window=300))
    whole = _vm_steps(lambda c: paging.capped_count(c, rare, window=None))
    assert windowed * 3 < whole, (windowed, whole)
    with default_store().engine.connect() as conn:
        est = paging.capped_count(conn, rare, window=300)
        assert paging.capped_count(conn, rare, window=None) == paging.Count(want)
    assert est.approx and not est.exact and str(est).startswith("~")
    assert 0.5 * want <= est.n <= 1.5 * want, (est, want)


def _plan(conn: Any, q: Any) -> list[str]:
    sql = str(q.compile(conn.engine, compile_kwargs={"literal_binds": True}))
    return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.parametrize("order", ["metrics.auc DESC", "params.depth ASC", "params.depth DESC", "tags.team DESC"])
def test_sorted_page_plans_walk_an_index_and_never_sort_every_run(ws, order):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    _populate(300)
    with default_store().engine.connect() as conn:  # no statistics yet (sqlite_stat1 comes when connections close)
        base = select(*Run.__table__.c).where(Run.lifecycle_stage == "active")
        segments = paging.sort_segments(base, order)
        assert segments is not None
        for seg in segments(conn) if callable(segments) else segments:
            plan = _plan(conn, seg.limit(50))
            text = "\n".join(plan)
            if "params" in order and "FROM runs JOIN params" in str(seg):
                assert any(s.startswith("SEARCH params") and "ix_params_key_" in s for s in plan), text
            if " < :" not in str(seg):  # a chunk of at most WALK_CHUNK params (the walk's upper bound) may be sorted
                assert not any("USE TEMP B-TREE FOR ORDER BY" in s for s in plan), text  # "RIGHT PART" (ties) fine
            assert not any(" metrics " in f" {s} " for s in plan), text
        old = _plan(conn, query.apply_order(base, order).limit(50))
        assert any("USE TEMP B-TREE FOR ORDER BY" in s for s in old), "apply_order no longer sorts: retire this"


@pytest.mark.parametrize(
    ("flt", "bounded"),
    [
        ("params.model = 'gbm'", True),
        ("params.model = 'gbm' AND (tags.team = 'ads' OR tags.team = 'risk')", True),
        ("status = 'FAILED' AND NOT metrics.auc >= 0.9", False),  # a NOT bounds nothing; status is no index leaf
        ("metrics.auc >= 0.9 OR params.model = 'gbm'", False),  # either side can add matches
        ("NOT (params.model = 'gbm' AND tags.team = 'ads')", False),
    ],
)
def test_a_filter_is_bounded_only_by_a_condition_every_match_meets(ws, flt, bounded):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's counts do not use the bound")
    _populate(60)  # every condition here reads < 2,000 index rows: selective
    with default_store().engine.connect() as conn:
        assert query.plan_filter_bounded(flt, conn)[1] is bounded


@pytest.mark.parametrize(
    "flt", ["tags.team = 'ads'", "metrics.auc >= 0.75", "params.model = 'gbm' AND tags.team = 'ads'"]
)
def test_count_plans_probe_indexes_and_never_scan_the_metric_history(ws, flt):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    _populate(300)
    eng = default_store().engine
    # a window smaller than the store: the windowed count runs
    seen = statements_sent(eng, lambda: data.count_runs(flt, window=100), is_select)
    with eng.connect() as conn:
        steps = [r[3] for q, p in seen for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q, p)]
    assert not any(s.startswith("SCAN") and (" metrics" in s or "latest_metrics" in s) for s in steps), steps
    assert not any(s.startswith("SCAN runs") and "INDEX" not in s for s in steps), steps  # runs by an index only
    assert any("INDEX" in s and ("tags" in s or "latest_metrics" in s) for s in steps), steps


def test_estimates_scale_by_the_experiment_and_never_undercut_what_the_pages_hold(ws, monkeypatch):
    runs = _populate(400)
    in_e1 = sum(1 for r in runs if r["exp"] == 1 and r["model"] == "gbm")
    est = data.count_runs("params.model = 'gbm' OR params.model = 'none'", ["e1"], window=60)  # not bounded
    assert est.approx and 0.5 * in_e1 <= est.n <= 1.5 * in_e1, (est, in_e1)
    # only old runs match: the newest window holds none, the estimate is 0, yet a full first page exists
    monkeypatch.setattr(paging, "COUNT_WINDOW", 20)
    old = (T0 + timedelta(seconds=10 * 60)).isoformat()
    pg = data.runs_page(f"start_time < '{old}' AND name LIKE 'run-%'", per_page=10)
    assert len(pg.runs) == 10 and pg.total_text == "10+" and pg.has_next
