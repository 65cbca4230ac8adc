"""Online store stats (rows, newest event) and samples, on SQLite and a real Redis, against the rows written
(brute force: the latest row per entity, minus those expired); materialisation records them with the watermark."""

from __future__ import annotations

import sqlite3
from typing import Any

import pyarrow as pa
import pytest

US = 1_000_000
KEYS = {"user_id": "int64"}
FIELDS = {"clicks": "int64", "score": "float64", "tag": "string"}


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    """n rows of distinct entities (materialisation writes one row per entity) out of 1.5 n ids."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.choice(n * 3 // 2, size=n, replace=False)
    return [
        {
            "user_id": int(ids[i]),
            "clicks": int(rng.integers(0, 9)),
            "score": float(rng.random()),
            "tag": str(rng.choice(["a", "b"])),
            "__et": int(rng.integers(1_700_000_000, 1_700_100_000)) * US,
        }
        for i in range(n)
    ]


def _data(rows: list[dict[str, Any]], expire: int | None) -> Any:
    from roost.features.online_stores import ViewData

    cols = {
        "user_id": pa.array([r["user_id"] for r in rows], pa.int64()),
        "clicks": pa.array([r["clicks"] for r in rows], pa.int64()),
        "score": pa.array([r["score"] for r in rows], pa.float64()),
        "tag": pa.array([r["tag"] for r in rows], pa.string()),
        "__et": pa.array([r["__et"] for r in rows], pa.timestamp("us", tz="UTC")),
        "__ct": pa.array([None] * len(rows), pa.timestamp("us", tz="UTC")),
    }
    return ViewData("v", KEYS, FIELDS, pa.table(cols), expire)


def _expected(batches: list[tuple[list[dict[str, Any]], int | None]]) -> dict[int, dict[str, Any]]:
    """Brute force: per entity the row with the latest event time (ties: the later write), then expiries."""
    kept: dict[int, dict[str, Any]] = {}
    for rows, expire in batches:
        for r in rows:
            if r["user_id"] not in kept or r["__et"] >= kept[r["user_id"]]["__et"]:
                kept[r["user_id"]] = r
        if expire is not None:
            kept = {k: r for k, r in kept.items() if r["__et"] >= expire}
    return kept


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        from roost.features.online_stores.sqlite import SQLiteOnlineStore

        st = SQLiteOnlineStore(f"sqlite:///{tmp_path}/online.db")
    else:
        from roost.features.online_stores.redis import RedisOnlineStore

        st = RedisOnlineStore(request.getfixturevalue("redis_url"), prefix=f"stats{id(tmp_path)}")
    yield st
    st.drop_view("v")
    st.close()


def test_stats_and_sample_equal_the_rows_written(store: Any) -> None:
    assert store.stats("v") is None and store.sample("v", 5) == []
    first, second = _rows(300, 1), _rows(300, 2)
    expire = 1_700_050_000 * US
    store.write([_data(first, None)])
    store.write([_data(second, expire)])
    want = _expected([(first, None), (second, expire)])
    st = store.stats("v")
    assert st == {"rows": len(want), "newest_event": max(r["__et"] for r in want.values())}
    sample = store.sample("v", 7)
    assert len(sample) == 7
    for row in sample:
        ref = want[row["user_id"]]
        assert row == {k: ref[k] for k in ("user_id", "clicks", "score", "tag", "__et")}
    assert len(store.sample("v", 10_000)) == len(want)


def test_materialize_records_online_rows_and_newest_event(ws: Any) -> None:
    from datetime import UTC, datetime, timedelta

    import pyarrow.parquet as pq

    from roost.features import apply, materialize, repo

    (ws.root / "data").mkdir(exist_ok=True)
    rows = _rows(200, 3)
    tbl = _data(rows, None).table.drop(["__ct"]).rename_columns(["user_id", "clicks", "score", "tag", "et"])
    pq.write_table(tbl, ws.root / "data" / "v.parquet")
    (ws.root / "features").mkdir(exist_ok=True)
    (ws.root / "features" / "defs.py").write_text(
        "from roost.features import Entity, Source, FeatureView\n"
        "u = Entity('u', {'user_id': 'int64'})\n"
        "v = FeatureView('v', u, Source('s', path='data/v.parquet', event_time='et'),\n"
        "                fields={'clicks': 'int64', 'score': 'float64', 'tag': 'string'})\n"
    )
    apply()
    materialize(start=datetime(2023, 1, 1, tzinfo=UTC), end=datetime(2023, 11, 20, tzinfo=UTC) + timedelta(days=30))
    wm = repo.get("watermark", "v")
    assert wm is not None
    with sqlite3.connect(ws.online_store[len("sqlite:///") :]) as con:
        (count,) = con.execute('SELECT count(*) FROM "fv_v"').fetchone()
    want = _expected([(rows, None)])
    assert wm["online_rows"] == count == len(want)
    newest = datetime.fromtimestamp(max(r["__et"] for r in rows) / US, UTC)
    assert datetime.fromisoformat(wm["newest_event"]) == newest
