"""Every point-in-time join engine gives the same training set on data big enough for DuckDB to read in parallel.

The sort-search engine reads a file source twice (keys and times, then the matched rows' fields) and relies on
DuckDB returning a single-table scan in source order both times; many small row groups in several files and
8 threads give DuckDB every chance to reorder, so a broken assumption would show here as a mismatch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import ENGINES, use_engine, write_defs

T0 = datetime(2024, 6, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")

DEFS = """
user = Entity("user", {"user_id": "int64"})
acct = Entity("acct", {"user_id": "int64", "region": "string"})
src = Source("many", path="data/many/*.parquet", event_time="et", created_time="ct")
src_noct = Source("many_noct", path="data/many/*.parquet", event_time="et")
F = {"v": "int64", "x": "float64", "s": "string", "b": "bool"}
ttl6h = FeatureView("ttl6h", user, src, fields=F, ttl=timedelta(hours=6))
forever = FeatureView("forever", user, src_noct, fields=F)
by_region = FeatureView("by_region", acct, src, fields=F, ttl=timedelta(days=1))
"""


def _write(root, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    minute = rng.integers(0, 3 * 24 * 60, n)  # 3 days on a minute grid: many (key, time) ties
    late = rng.integers(0, 5, n)
    ct = [None if rng.random() < 0.1 else T0 + timedelta(minutes=int(m + d)) for m, d in zip(minute, late)]

    def nulls(values: list, p: float = 0.1) -> list:
        return [None if rng.random() < p else v for v in values]

    tbl = pa.table(
        {
            "user_id": pa.array(rng.integers(-50, 400, n), pa.int64()),
            "region": pa.array(rng.choice(["eu", "us"], n).tolist(), pa.string()),
            "et": pa.array([T0 + timedelta(minutes=int(m)) for m in minute], TS),
            "ct": pa.array(ct, TS),
            "v": pa.array(nulls(rng.integers(-1000, 1000, n).tolist()), pa.int64()),
            "x": pa.array(nulls(rng.normal(0, 1, n).tolist()), pa.float64()),
            "s": pa.array(nulls([f"s{int(i)}" for i in rng.integers(0, 50, n)]), pa.string()),
            "b": pa.array(nulls((rng.random(n) < 0.5).tolist()), pa.bool_()),
        }
    )
    d = root / "data" / "many"
    d.mkdir(parents=True)
    third = n // 3
    for i, part in enumerate([tbl.slice(0, third), tbl.slice(third, third), tbl.slice(2 * third)]):
        pq.write_table(part, d / f"part-{i}.parquet", row_group_size=997)


def _entities(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    sec = rng.integers(-3600, 3 * 86400 + 3600, n)
    return pa.table(
        {
            "user_id": pa.array(rng.integers(-60, 420, n), pa.int64()),
            "region": pa.array(rng.choice(["eu", "us", "ap"], n).tolist(), pa.string()),
            "event_time": pa.array([None if rng.random() < 0.02 else T0 + timedelta(seconds=int(s)) for s in sec], TS),
        }
    )


@pytest.fixture(scope="module")
def many_ws(module_ws):
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    _write(module_ws.root, 30_000, seed=1)
    write_defs(module_ws.root, DEFS)
    apply()
    workspace.use(None)
    return module_ws


@pytest.fixture(scope="module")
def reference(many_ws):
    """The training set from the struct-key ASOF SQL, the oldest engine."""
    from roost import workspace
    from roost.features import order, pit, training_set

    workspace.use(many_ws)
    saved = pit.ENGINE, order.PACK
    pit.ENGINE, order.PACK = "sql", False
    try:
        return training_set(
            _entities(12_000, seed=2), ["ttl6h:*", "forever:*", "by_region:*"], full_names=True, output="arrow"
        )
    finally:
        pit.ENGINE, order.PACK = saved
        workspace.use(None)


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "sql-struct"])
def test_engines_agree_on_parallel_reads(many_ws, reference, engine, monkeypatch):
    from roost import workspace
    from roost.features import local_engine, training_set

    connect = local_engine.connect

    def many_threads(root):
        con = connect(root)
        con.execute("SET threads = 8")
        return con

    monkeypatch.setattr(local_engine, "connect", many_threads)
    use_engine(monkeypatch, engine)
    workspace.use(many_ws)
    try:
        got = training_set(
            _entities(12_000, seed=2), ["ttl6h:*", "forever:*", "by_region:*"], full_names=True, output="arrow"
        )
    finally:
        workspace.use(None)
    assert got.schema == reference.schema
    matched = reference.num_rows - reference.column("ttl6h__v").null_count
    assert matched > 1000  # the data exercise matches, not only misses
    for name in reference.column_names:
        assert got.column(name).equals(reference.column(name)), name
