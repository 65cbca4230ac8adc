"""PostgreSQL: a batch of metric points checks its run once per statement, not once per point (migration 0011),
and the rule the foreign key kept still holds: no point without its run, a deleted run takes its points along, a
delete racing a batch never leaves a point behind. Checked with PostgreSQL's own plan (EXPLAIN ANALYZE's trigger
calls) and with two real connections racing."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError

pytestmark = pytest.mark.services


def _driver_url(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def _new_run(c: psycopg.Connection, experiment: str = "e") -> str:
    """A RUNNING run row (and its experiment) committed on `c`."""
    rid = uuid.uuid4().hex
    c.execute(
        "INSERT INTO experiments (name, created_at) VALUES (%s, now()) ON CONFLICT (name) DO NOTHING", (experiment,)
    )
    c.execute(
        "INSERT INTO runs (id, experiment_id, name, status, start_time, artifact_uri) "
        "SELECT %s, id, 'r', 'RUNNING', now(), 'file:///x' FROM experiments WHERE name = %s",
        (rid, experiment),
    )
    c.commit()
    return rid


def _points(c: psycopg.Connection, run_id: str) -> int:
    return int(c.execute("SELECT count(*) FROM metrics WHERE run_id = %s", (run_id,)).fetchone()[0])  # type: ignore[index]


class _Recorder:
    """Stands in for the hot path's cursor: keeps the statements it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any) -> int:
        self.sent.append((sql, params))
        return 0

    def executemany(self, sql: str, rows: Any) -> None:
        self.sent.append((sql, rows))


def _batch_sql(store: Any, run_id: str, n: int) -> tuple[str, Any]:
    """The statement (and parameters) the hot path sends for an n-point batch of one run."""
    rec = _Recorder()
    store._hot.insert_metrics(rec, [(run_id, "loss", 1.0 / (i + 1), i, 1.7e9 + i) for i in range(n)])
    assert len(rec.sent) == 1
    return rec.sent[0]


def test_a_batch_checks_its_run_once_not_once_per_point(pg_migrated: Any) -> None:
    """EXPLAIN ANALYZE of the hot path's 5,000-point insert: every trigger runs at most once (the foreign key ran
    its check 5,000 times: two thirds of the insert's time)."""
    from roost.registry.store import open_store

    url = pg_migrated()
    store = open_store(url)
    with psycopg.connect(_driver_url(url)) as c:
        rid = _new_run(c)
        sql, params = _batch_sql(store, rid, 5000)
        plan = c.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0]  # type: ignore[index]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        triggers = {t["Trigger Name"]: t["Calls"] for t in plan[0].get("Triggers", [])}
        assert _points(c, rid) == 5000
        c.rollback()
    assert triggers and max(triggers.values()) == 1, triggers
    store.engine.dispose()


def test_points_need_their_run_and_go_with_it(pg_migrated: Any) -> None:
    """A batch for a missing run is refused whole; deleting a run, or its experiment, deletes its points and only
    those (brute force over the table)."""
    from roost.registry.store import open_store

    url = pg_migrated()
    store = open_store(url)
    with psycopg.connect(_driver_url(url)) as c:
        keep, gone, in_exp = _new_run(c), _new_run(c), _new_run(c, "other")
        for rid in (keep, gone, in_exp):
            store.log_batch(rid, metrics=[("a", float(i), i, 1.7e9) for i in range(300)] + [("b", 1.0, 0, 1.7e9)])
        with pytest.raises(IntegrityError):
            store.log_batch(uuid.uuid4().hex, metrics=[("a", 1.0, i, 1.7e9) for i in range(10)])
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # any writer, one point or many
            c.execute("INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES ('nope', 'a', 1, 1, 1)")
        c.rollback()
        c.execute("DELETE FROM runs WHERE id = %s", (gone,))
        c.execute("DELETE FROM experiments WHERE name = 'other'")
        c.commit()
        counts = dict(c.execute("SELECT run_id, count(*) FROM metrics GROUP BY run_id").fetchall())
        assert counts == {keep: 301}
        orphans = c.execute(
            "SELECT count(*) FROM metrics m WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = m.run_id)"
        )
        assert orphans.fetchone()[0] == 0  # type: ignore[index]
    store.engine.dispose()


def _wait_blocked(c: psycopg.Connection, pid: int) -> None:
    """Wait until backend `pid` waits on a lock (at most 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = c.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on a lock")


@pytest.mark.parametrize("first", ["batch", "delete"])
def test_a_delete_racing_a_batch_leaves_no_point_behind(pg_migrated: Any, first: str) -> None:
    """batch first: the delete waits for the batch's commit, then takes its points along. delete first: the batch
    waits for the delete's commit, then is refused. Either way no point is left without its run."""
    from roost.registry.store import open_store

    url = pg_migrated()
    store = open_store(url)
    with (
        psycopg.connect(_driver_url(url)) as a,
        psycopg.connect(_driver_url(url)) as b,
        psycopg.connect(_driver_url(url), autocommit=True) as watch,
    ):
        rid = _new_run(a)
        sql, params = _batch_sql(store, rid, 1000)
        outcome: dict[str, BaseException | None] = {}

        def second(conn: psycopg.Connection, statement: str, args: Any) -> None:
            try:
                conn.execute(statement, args)
                conn.commit()
                outcome["error"] = None
            except psycopg.Error as exc:
                conn.rollback()
                outcome["error"] = exc

        if first == "batch":
            a.execute(sql, params)  # uncommitted: the run is locked FOR KEY SHARE
            t = threading.Thread(target=second, args=(b, "DELETE FROM runs WHERE id = %s", (rid,)))
            t.start()
            _wait_blocked(watch, b.info.backend_pid)
            a.commit()
        else:
            b.execute("DELETE FROM runs WHERE id = %s", (rid,))  # uncommitted
            t = threading.Thread(target=second, args=(a, sql, params))
            t.start()
            _wait_blocked(watch, a.info.backend_pid)
            b.commit()
        t.join(30)
        assert not t.is_alive()
        if first == "batch":
            assert outcome["error"] is None
        else:
            assert isinstance(outcome["error"], psycopg.errors.ForeignKeyViolation), outcome
        assert _points(watch, rid) == 0
        assert watch.execute("SELECT count(*) FROM runs WHERE id = %s", (rid,)).fetchone()[0] == 0  # type: ignore[index]
    store.engine.dispose()
