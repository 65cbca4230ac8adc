"""A sort by a param with few distinct values (the runs page's params.X column): pages equal a brute-force sort,
ties and text values included, however the walk splits the values (chunks of several values, or one value's runs
read in index order); and a page reads about what it shows, not every run sharing the first value (SQLite VM
steps counted, not time)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from runrows import finished_run
from sqlalchemy import select
from test_counts import _vm_steps, every_page

from roost.registry import paging, query
from roost.registry.store import default_store
from roost.registry.tables import Param, Run

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _populate(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """n runs: depth 3 (40%), 5 (30%), a few text values, rare fractional values, or none; ties in start time."""
    rng = random.Random(seed)
    st = default_store()
    eid = st.get_or_create_experiment("sorts")
    runs, params, out = [], [], []
    for i in range(n):
        rid = f"{rng.getrandbits(128):032x}"
        start = T0 + timedelta(seconds=10 * i - (10 if i % 17 == 0 else 0))  # every 17th shares a start time
        u = rng.random()
        depth: Any = 3 if u < 0.4 else 5 if u < 0.7 else rng.choice(["deep", "flat"]) if u < 0.8 else round(u * 9, 2)
        if i % 13 == 0:
            depth = None
        out.append({"id": rid, "start": start, "depth": depth})
        runs.append(finished_run(rid, eid, f"r{i}", start))
        if depth is not None:
            params.append((rid, "depth", depth))
        params.append((rid, "model", "gbm"))
    st.bulk_insert(runs, params)
    return out


def _brute(runs: list[dict[str, Any]], desc: bool) -> list[str]:
    """Numbers by value, then text by value (each reversed when desc), ties newest first then id; runs without last."""

    def newest(r: dict[str, Any]) -> tuple[float, str]:
        return (-r["start"].timestamp(), r["id"])

    nums = sorted({r["depth"] for r in runs if isinstance(r["depth"], int | float)}, reverse=desc)
    texts = sorted({r["depth"] for r in runs if isinstance(r["depth"], str)}, reverse=desc)
    out = []
    for v in [*nums, *texts]:
        out += sorted((r for r in runs if r["depth"] == v and type(r["depth"]) is type(v)), key=newest)
    return [r["id"] for r in out] + [r["id"] for r in sorted((r for r in runs if r["depth"] is None), key=newest)]


@pytest.mark.parametrize("chunk", [4, 25, 1000])  # values far larger than a chunk, chunks of several values, one
@pytest.mark.parametrize("desc", [False, True])
def test_param_sort_pages_equal_a_brute_force_sort(ws, monkeypatch, chunk, desc):
    monkeypatch.setattr(paging, "WALK_CHUNK", chunk, raising=False)
    runs = _populate(260)
    want = _brute(runs, desc)
    order = "params.depth DESC" if desc else "params.depth ASC"
    assert every_page(order, 23)[0] == want
    with default_store().engine.connect() as conn:  # any window, not only page-aligned ones
        segs = paging.sort_segments(select(*Run.__table__.c), order)
        assert segs is not None
        for offset, limit in [(0, 7), (95, 30), (100, 1), (200, 100), (259, 5)]:
            assert [r["id"] for r in paging.read_page(conn, segs, limit, offset)] == want[offset : offset + limit]
    with default_store().read() as s:  # apply_order (one sorted query) agrees
        assert list(s.scalars(query.apply_order(select(Run.id), order))) == want


@pytest.mark.parametrize("analyzed", [False, True])
@pytest.mark.parametrize("desc", [False, True])
def test_a_page_sorted_by_a_common_value_reads_about_the_page(ws, monkeypatch, desc, analyzed):
    if default_store().engine.dialect.name != "sqlite":
        pytest.skip("SQLite's progress handler counts the work")
    monkeypatch.setattr(
        paging, "WALK_CHUNK", 100, raising=False
    )  # the walk's probe reads a chunk: small beside the 1,500
    runs = _populate(4000)
    if analyzed:  # the planner with statistics, as PRAGMA optimize leaves them
        with default_store().engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    want = _brute(runs, desc)
    first = 5 if desc else 3  # the first numeric value: ~1,500 runs share it
    order = "params.depth DESC" if desc else "params.depth ASC"
    base = select(*Run.__table__.c).where(Run.lifecycle_stage == "active")
    segs = paging.sort_segments(base, order)
    assert segs is not None
    got: list[str] = []
    pages = [(0, 50), (50, 50)]  # the first two pages (a deep page costs its offset, as every sorted read)
    page_steps = max(
        _vm_steps(lambda c, o=o, n=n: got.extend(r["id"] for r in paging.read_page(c, segs, n, o))) for o, n in pages
    )
    assert got == want[:100]
    group = base.join(Param, Param.run_id == Run.id)
    group = group.where(Param.key == "depth", Param.num == first)
    group_steps = _vm_steps(lambda c: list(c.execute(group)))  # reading every run of the first value once
    assert page_steps * 4 < group_steps, (page_steps, group_steps)
