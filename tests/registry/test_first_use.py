"""Many first users of one new store at once: the schema upgrade is serialised, every one of them succeeds.

16 processes start together (a barrier: each imports roost, says ready, and waits for one 'go' line) on a database
that has no schema yet, each doing what a first user does: open the store, start a run, log a metric. Before the
migrations took a lock, 7 of 8 such processes on PostgreSQL died with IntegrityError (pg_type_typname_nsp_index:
two upgraders creating the same table) and the survivors' runs went into whichever schema won.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from roost.registry.engine import HEAD_REVISION

USERS = 16

FIRST_USER = r"""
import sys
import roost
from roost import workspace
import roost.registry.store, sqlalchemy, alembic.command  # imported before the barrier: only the store work races
if "postgresql" in sys.argv[2]:
    import psycopg
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(3)
workspace.use(sys.argv[1])
with roost.start_run(experiment="first", name=f"user-{sys.argv[3]}") as run:
    run.log_metric("loss", float(sys.argv[3]), step=0)
print("done", run.id, flush=True)
"""


def _workspace(root: Path, url: str) -> Path:
    """A workspace folder whose roost.yaml points at `url`; nothing opens the store here."""
    root.mkdir(parents=True)
    (root / "roost.yaml").write_text(f"project: first\nstore_url: {url}\nartifacts: .roost/artifacts\n")
    return root


def _first_users(root: Path, url: str, n: int) -> list[tuple[int, str]]:
    """Start n first users, release them together, return (exit code, stderr tail) of each."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USER, str(root), url, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    try:
        for p in procs:  # the barrier: every process has imported everything
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        out = []
        for p in procs:
            _, err = p.communicate(timeout=300)
            out.append((p.returncode, err[-600:]))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _check(url: str, results: list[tuple[int, str]]) -> None:
    failed = [(code, err) for code, err in results if code != 0]
    assert not failed, f"{len(failed)} of {len(results)} first users failed; first: {failed[0][1]}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]
            assert c.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'FINISHED'")).scalar() == len(results)
            assert c.execute(sa.text("SELECT count(*) FROM experiments")).scalar() == 1
            losses = c.execute(sa.text("SELECT value FROM metrics WHERE key = 'loss' ORDER BY value")).scalars().all()
            assert losses == [float(i) for i in range(len(results))]
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.services
def test_16_first_users_of_a_new_postgresql_database(tmp_path: Path, pg_database) -> None:
    url = pg_database()
    t0 = time.monotonic()
    results = _first_users(_workspace(tmp_path / "ws", url), url, USERS)
    _check(url, results)
    print(f"16 first users on PostgreSQL: {time.monotonic() - t0:.1f} s")


@pytest.mark.slow
def test_16_first_users_of_a_new_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store' / 'roost.db'}"
    results = _first_users(_workspace(tmp_path / "ws", url), url, USERS)
    _check(url, results)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database with nothing in it: a new SQLite file, or a new database on the test server."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_database")())
    return f"sqlite:///{tmp_path / 'roost.db'}"


def test_a_failing_upgrade_leaves_the_store_as_it_was(
    empty_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest migration fails at its end: not one of the earlier ones stays applied (SQLite committed each
    migration on its own, so a failure left the store half-upgraded at the revision before)."""
    import shutil

    from roost.registry import engine as eng
    from roost.registry.store import Store

    broken = tmp_path / "migrations"
    shutil.copytree(eng.MIGRATIONS_DIR, broken, ignore=shutil.ignore_patterns("__pycache__"))
    last = broken / "versions" / f"{HEAD_REVISION}.py"
    last.write_text(
        last.read_text() + "\n\n_real = upgrade\n\n\ndef upgrade() -> None:\n    _real()\n"
        "    raise RuntimeError('migration failed on purpose')\n"
    )
    real = eng.MIGRATIONS_DIR
    monkeypatch.setattr(eng, "MIGRATIONS_DIR", broken)
    store = Store(empty_store_url)
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            store.ensure_schema()
        assert eng.current_revision(store.engine) is None
        assert sa.inspect(store.engine).get_table_names() == []
        monkeypatch.setattr(eng, "MIGRATIONS_DIR", real)
        store.ensure_schema()  # the real migrations then upgrade it as if nothing had happened
        assert eng.current_revision(store.engine) == HEAD_REVISION
    finally:
        store.engine.dispose()


def test_a_store_at_head_opens_without_the_migration_lock(ws) -> None:
    """The fast path (every CLI start, every process's first run): while another connection holds the migration
    lock (PostgreSQL's advisory lock, SQLite's write lock), a store already at head still opens at once, with one
    SELECT of its revision."""
    import threading

    from helpers import statements_sent
    from roost.registry import engine as eng
    from roost.registry.store import Store

    holder = sa.create_engine(ws.store_url)
    store = Store(ws.store_url)
    try:
        with holder.connect() as c:
            if ws.store_url.startswith("sqlite"):
                c.exec_driver_sql("BEGIN IMMEDIATE")  # (pysqlite: the statement goes straight to SQLite)
            else:
                c.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": eng.MIGRATION_LOCK_KEY})
            done = threading.Event()
            sent: list = []

            def open_it() -> None:
                sent.extend(statements_sent(store.engine, store.ensure_schema))
                done.set()

            t = threading.Thread(target=open_it, daemon=True)
            t.start()
            assert done.wait(30), "opening a store at head waited for the migration lock"
            c.rollback()
        assert [sql.strip() for sql, _ in sent] == ["SELECT version_num FROM alembic_version"]
    finally:
        store.engine.dispose()
        holder.dispose()


@pytest.mark.services
def test_waiting_for_another_upgrader_is_bounded_with_a_message(pg_database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session holding the migration lock (an upgrade in progress elsewhere): a new user waits, then gets a
    RoostError naming the store, and nothing was created."""
    from roost.errors import RoostError
    from roost.registry import engine as eng
    from roost.registry.store import Store

    url = pg_database()
    monkeypatch.setattr(eng, "MIGRATION_WAIT_S", 1.0)
    holder = sa.create_engine(url)
    store = Store(url)
    try:
        with holder.connect() as c:
            c.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": eng.MIGRATION_LOCK_KEY})
            t0 = time.monotonic()
            with pytest.raises(RoostError) as err:
                store.ensure_schema()
            assert 1.0 <= time.monotonic() - t0 < 30
            assert "waited 1 s" in err.value.message and url.rsplit("/", 1)[1] in err.value.message
            assert "advisory lock" in (err.value.hint or "")
        holder.dispose()  # closes the holder's session (a pooled one would keep its session-level lock)
        assert sa.inspect(store.engine).get_table_names() == []
        store.ensure_schema()  # the holder's session is gone, and its lock with it: the upgrade goes ahead
        assert eng.current_revision(store.engine) == HEAD_REVISION
    finally:
        store.engine.dispose()
        holder.dispose()
