"""Run tracking on PostgreSQL commits without waiting for its WAL flush (synchronous_commit=off for those
transactions: the guarantee of SQLite's WAL + synchronous=NORMAL default); registry writes, and every write with
ROOST_PG_DURABLE_TRACKING=1, wait for it. Read back from PostgreSQL itself (SHOW) and from the statements sent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text


def _setting(store: Any, durable: bool) -> str:
    with store.write(durable=durable) as s:
        return str(s.execute(text("SHOW synchronous_commit")).scalar())


def test_tracking_writes_skip_the_wal_flush_registry_writes_do_not(
    pg_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roost.registry.store import open_store

    url = pg_database()
    store = open_store(url)
    assert _setting(store, durable=False) == "off"
    assert _setting(store, durable=True) == "on"
    with store.read() as s:  # SET LOCAL: gone with its transaction, the pooled connection is as it was
        assert s.execute(text("SHOW synchronous_commit")).scalar() == "on"
    monkeypatch.setenv("ROOST_PG_DURABLE_TRACKING", "1")
    assert _setting(store, durable=False) == "on"


def test_a_run_logs_through_non_durable_commits_and_registers_durably(
    pg_database: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import roost
    from roost.registry.store import open_store

    url = pg_database()
    store = open_store(url)
    sent: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(stmt))
    from roost import workspace

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROOST_STORE_URL", url)
    workspace.use(roost.init(tmp_path / "w"))
    with roost.start_run(experiment="e", params={"lr": 0.1}, store=store) as run:
        run.log_metric("auc", 0.9)
    assert sum("synchronous_commit TO OFF" in s for s in sent) >= 2  # the run's insert, its points and status
    workspace.use(None)
    assert store.get_run(run.id)["status"] == "FINISHED"
