"""SQLite stores get planner statistics (sqlite_stat1) the way SQLite recommends — PRAGMA optimize when a
connection that queried closes, a limited ANALYZE after a migration or `runs import-mlflow` — and nothing else in
the store changes: every row, the schema and the answers to searches stay the same."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from runrows import finished_run

from roost.registry import api, importer
from roost.registry.store import default_store, reset_default

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _db_path() -> Path:
    st = default_store()
    if st.engine.dialect.name != "sqlite":
        pytest.skip("sqlite_stat1 is SQLite's")
    return Path(str(st.engine.url.database))


def _stats(path: Path) -> dict[str, set[str]]:
    """{table: indexes with a sqlite_stat1 row} ({} when the table sqlite_stat1 does not exist)."""
    con = sqlite3.connect(path)
    try:
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
            return {}
        out: dict[str, set[str]] = {}
        for tbl, idx in con.execute("SELECT tbl, idx FROM sqlite_stat1"):
            out.setdefault(tbl, set()).add(idx)
        return out
    finally:
        con.close()


def _snapshot(path: Path) -> tuple[list[tuple[str, str]], dict[str, list[tuple[object, ...]]]]:
    """The schema (without SQLite's statistics tables) and every row of every table, sorted."""
    con = sqlite3.connect(path)
    try:
        schema = sorted(
            (name, sql or "")
            for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%'")
        )
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables if "stat" not in t}
        return schema, rows
    finally:
        con.close()


def _fill(n: int) -> None:
    st = default_store()
    eid = st.get_or_create_experiment("stats")
    runs, params, tags, points = [], [], [], []
    for i in range(n):
        rid = f"{i:032x}"
        start = T0 + timedelta(seconds=i)
        runs.append(finished_run(rid, eid, f"r{i}", start))
        params += [(rid, "depth", i % 4), (rid, "model", "gbm" if i % 3 else "mlp")]
        tags.append((rid, "team", "ads" if i % 2 else "risk"))
        points.append((rid, "auc", (i % 17) / 17, 0, 1.0))
    st.bulk_insert(runs, params, tags, points)


def _searches() -> list[list[str]]:
    return [
        [r["run_id"] for r in api.search_runs(filter=flt, order_by=order)]
        for flt, order in [
            ("params.model = 'mlp' AND metrics.auc > 0.3", "metrics.auc DESC"),
            ("tags.team = 'ads' AND params.depth >= 2", None),
            (None, "params.depth ASC"),
        ]
    ]


def test_closing_a_store_that_was_queried_leaves_statistics_and_nothing_else_changes(ws):
    path = _db_path()
    _fill(300)
    before = _searches()
    assert not {"runs", "params"} & set(_stats(path))  # bulk writes alone leave none (the template was empty)
    snap = _snapshot(path)
    reset_default()  # what a command's exit and a server's shutdown do: the pooled connections close
    stats = _stats(path)
    assert {"runs", "params", "latest_metrics", "tags"} <= set(stats), stats
    assert "ix_params_key_num_start" in stats["params"], stats
    assert _snapshot(path) == snap
    assert _searches() == before


def test_upgrading_a_store_with_rows_analyzes_it(tmp_path):
    from alembic import command
    from alembic.config import Config

    from roost.registry.engine import MIGRATIONS_DIR, make_engine
    from roost.registry.store import Store

    path = tmp_path / "old.db"
    eng = make_engine(f"sqlite:///{path}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005_runs_status_start")
        conn.exec_driver_sql("INSERT INTO experiments (name, created_at) VALUES ('old', '2026-01-01 00:00:00')")
        for i in range(50):
            conn.exec_driver_sql(
                "INSERT INTO runs (id, experiment_id, status, start_time, artifact_uri, lifecycle_stage) "
                f"VALUES ('r{i}', 1, 'FINISHED', '2026-01-01 00:00:{i:02d}', 'file:///x', 'active')"
            )
            conn.exec_driver_sql(
                f"INSERT INTO params (run_id, key, value, type, num) VALUES ('r{i}', 'd', '1', 'int', 1)"
            )
        conn.commit()
    eng.dispose()
    assert _stats(path) == {}
    reset_default()
    st = Store(f"sqlite:///{path}")
    st.ensure_schema()
    stats = _stats(path)
    st.engine.dispose()
    reset_default()
    assert {"runs", "params", "experiments"} <= set(stats), stats
    assert "ix_runs_status_start" in stats["runs"], stats


@pytest.mark.slow
def test_import_mlflow_analyzes_the_store_and_imports_the_same_rows(ws, tmp_path, monkeypatch, mlflow_python):
    from test_import_mlflow import _write_store

    from roost.registry import engine
    from roost.registry.store import Store

    path = _db_path()
    _write_store(mlflow_python, tmp_path, (tmp_path / "mlruns").as_uri())
    report = importer.import_mlflow(str(tmp_path / "mlruns"), default_store())
    assert report.runs == 4
    stats = _stats(path)  # right after the import, before any connection closes
    assert {"runs", "params", "metrics", "latest_metrics", "tags"} <= set(stats), stats
    plain = Store(f"sqlite:///{tmp_path / 'plain.db'}")  # the same import without statistics: the same rows
    plain.ensure_schema(create=True)
    monkeypatch.setattr(engine, "analyze", lambda _engine: None)
    importer.import_mlflow(str(tmp_path / "mlruns"), plain)
    plain.engine.dispose()
    got, want = _snapshot(path)[1], _snapshot(tmp_path / "plain.db")[1]
    for rows in (got, want):  # an experiment's created_at is when the import made it
        rows["experiments"] = [r[:2] for r in rows["experiments"]]
    assert got == want


def test_a_long_lived_connection_refreshes_statistics_now_and_then(ws, monkeypatch):
    from roost.registry import engine

    path = _db_path()
    _fill(200)
    _searches()
    assert not {"runs", "params"} & set(_stats(path))  # open connections, no statistics yet
    monkeypatch.setattr(engine, "OPTIMIZE_EVERY_S", -1.0)  # as if an hour had passed since the last optimize
    _searches()  # each connection handed back to the pool runs PRAGMA optimize
    assert {"runs", "params"} <= set(_stats(path))
