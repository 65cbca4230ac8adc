"""Engine creation for the repository store: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy import exc as exc_mod
from sqlalchemy.dialects.postgresql import dml as postgresql_dml
from sqlalchemy.dialects.sqlite import dml as sqlite_dml
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from roost.errors import RoostError, redact_url

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0011_pg_metrics_run_check"
# rows ANALYZE reads per index; 0 = all. SQLite suggests 100-1000 to bound the time, but at 1M runs such sampled
# statistics made the planner scan and sort every run for the newest-first page; exact ones keep the index walk
# (figures: bench/RESULTS.md "SQLite statistics")
ANALYSIS_LIMIT = 0
OPTIMIZE_EVERY_S = 3600.0  # a pooled SQLite connection runs PRAGMA optimize at most this often (and when closed)


# URL scheme -> "module:Class" of its backend (the class builds the engine and the dialect's upsert)
BACKENDS: dict[str, str] = {
    "sqlite": "roost.registry.engine:SQLiteBackend",
    "postgresql": "roost.registry.engine:PostgresBackend",
    "postgres": "roost.registry.engine:PostgresBackend",
}
Upsert = sqlite_dml.Insert | postgresql_dml.Insert


class Backend(Protocol):
    """What the store needs from a database backend."""

    def engine(self, url: str) -> Engine:
        """A SQLAlchemy engine for `url`."""
        ...

    def upsert(self, table: Table) -> Upsert:
        """An INSERT on `table` that supports on_conflict_do_update."""
        ...


class SQLiteBackend:
    """SQLite in WAL mode, a busy timeout and BEGIN IMMEDIATE for writes."""

    def engine(self, url: str) -> Engine:
        """An engine on the SQLite file of `url` (its folder created)."""
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA case_sensitive_like=ON")  # LIKE behaves as on PostgreSQL
            cur.close()

        owner = os.getpid()  # a forked child must not touch the connections it inherited

        @event.listens_for(engine, "close")
        def _on_close(dbapi_conn: Any, _rec: Any) -> None:
            if os.getpid() == owner:
                sqlite_optimize(dbapi_conn)

        @event.listens_for(engine, "checkin")
        def _on_checkin(dbapi_conn: Any, rec: Any) -> None:  # long-lived connections (servers): now and then
            now = time.monotonic()
            if dbapi_conn is not None and now - rec.info.setdefault("roost_optimized", now) > OPTIMIZE_EVERY_S:
                rec.info["roost_optimized"] = now
                sqlite_optimize(dbapi_conn)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:  # on the driver connection: exec_driver_sql costs more than SQLite here
            sql = "BEGIN IMMEDIATE" if conn.info.get("roost_write") else "BEGIN"
            try:
                conn.connection.driver_connection.execute(sql)
            except sqlite3.Error as exc:  # as SQLAlchemy raises it (_retrying retries 'database is locked')
                raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=engine.dialect) from exc

        return engine

    def upsert(self, table: Table) -> Upsert:
        """SQLite's INSERT ... ON CONFLICT."""
        return sqlite_dml.insert(table)


def sqlite_optimize(dbapi_conn: Any, analyze: bool = False, busy_ms: int = 1000) -> None:
    """Refresh SQLite's planner statistics (sqlite_stat1) the way SQLite recommends (exact: ANALYSIS_LIMIT).

    `PRAGMA optimize` (on closing a connection, and hourly on long-lived ones) analyzes the tables this connection
    queried that have no statistics or grew much since (usually nothing); analyze=True runs ANALYZE on every table
    (after a migration or a bulk import, which query nothing). Waits at most busy_ms for a writer; failures are
    logged.
    """
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        cur.execute("ANALYZE" if analyze else "PRAGMA optimize")
    except sqlite3.Error as exc:  # locked by a long writer, read-only file, closing connection: stats can wait
        log.debug("sqlite optimize skipped: %s", exc)
    finally:
        with contextlib.suppress(sqlite3.Error):  # a pooled connection goes on as it was
            cur.execute("PRAGMA analysis_limit=0")
            cur.execute("PRAGMA busy_timeout=60000")
        cur.close()


def analyze(engine: Engine) -> None:
    """ANALYZE a SQLite store (limited, see sqlite_optimize) after a bulk write; nothing on other databases."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        if driver is not None:
            sqlite_optimize(driver, analyze=True, busy_ms=60000)


class PostgresBackend:
    """PostgreSQL through psycopg 3 (the roost[postgres] extra)."""

    def engine(self, url: str) -> Engine:
        """A pooled engine on `url` (postgres:// and postgresql:// mean psycopg 3), UTC sessions."""
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            engine = create_engine(
                url,
                pool_size=5,
                max_overflow=10,
                pool_recycle=POOL_RECYCLE_S,
                connect_args={"connect_timeout": 5, "options": "-c timezone=utc"},
            )
        except Exception as exc:
            raise RoostError(
                f"cannot open store {redact_url(url)}: {exc}", hint="for PostgreSQL install roost[postgres] (psycopg)"
            ) from exc
        event.listen(engine, "checkout", _check_alive)
        return engine

    def upsert(self, table: Table) -> Upsert:
        """PostgreSQL's INSERT ... ON CONFLICT."""
        return postgresql_dml.insert(table)


POOL_RECYCLE_S = 1800  # a pooled PostgreSQL connection is replaced after this long (idle-timeout firewalls, leaks)


def _check_alive(dbapi_conn: Any, rec: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection whose server end is gone, without a round trip (instead of
    pool_pre_ping's `;`, which cost one per checkout: bench/RESULTS.md "Team server").

    An idle connection has nothing to read; a backend that was terminated (pg_terminate_backend, a restart of the
    server, an idle timeout) has sent its FATAL error and closed the socket, so the socket is readable. That
    connection is dropped (with every pooled one older than now, as after a restart) and a new one is made; what
    this cannot see (a peer that vanished without a word) pool_recycle and TCP keepalives bound.
    """
    if rec.info.get("roost_checked") is None:  # just connected: nothing to check
        rec.info["roost_checked"] = True
        return
    try:
        readable, _, _ = select.select([dbapi_conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, AttributeError) as exc:  # closed (no socket): as dead
        raise exc_mod.InvalidatePoolError(f"pooled connection closed: {exc}") from None
    if readable:
        raise exc_mod.InvalidatePoolError("the server closed the pooled connection")


_backends: dict[str, Backend] = {}


def backend_for(url: str) -> Backend:
    """The backend of a store URL, chosen by its scheme from BACKENDS."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    spec = BACKENDS.get(scheme)
    if spec is None:
        raise RoostError(
            f"unsupported store URL {redact_url(url)}",
            hint="use " + " or ".join(f"{k}://..." for k in BACKENDS if k != "postgres"),
        )
    backend = _backends.get(spec)
    if backend is None:
        module, _, cls = spec.partition(":")
        backend = _backends[spec] = getattr(importlib.import_module(module), cls)()
    return backend


def make_engine(url: str) -> Engine:
    """Create an engine for `url` with the backend its scheme selects."""
    return backend_for(url).engine(url)


T = TypeVar("T")


def _retrying(fn: Callable[[], T], attempts: int = 20) -> T:
    """Call fn, retrying SQLite 'database is locked' errors with backoff."""
    delay = 0.01
    for i in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def write_session(engine: Engine, durable: bool = True) -> Iterator[Session]:
    """A session in one write transaction (BEGIN IMMEDIATE on SQLite); commits on success (see write_connection
    for `durable`)."""
    with write_connection(engine, durable) as conn, Session(bind=conn, expire_on_commit=False) as session:
        yield session
        session.flush()


def _durable_tracking() -> bool:
    return os.environ.get("ROOST_PG_DURABLE_TRACKING", "").lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def write_connection(engine: Engine, durable: bool = True) -> Iterator[Connection]:
    """A Core connection in one write transaction (BEGIN IMMEDIATE on SQLite), without an ORM session.

    `durable=False` (run tracking: runs, params, metrics, status, heartbeats, the audit log): on PostgreSQL the
    commit returns before its WAL is flushed (`synchronous_commit=off` for this transaction), the guarantee of
    SQLite's WAL mode with synchronous=NORMAL that roost uses by default: a crash of roost or of PostgreSQL loses
    nothing committed, an OS crash or power cut may lose the last moments' commits (never half of one). Set
    ROOST_PG_DURABLE_TRACKING=1 to flush every commit; registry, account and grant writes always are.
    """
    conn = engine.connect()
    conn.info["roost_write"] = True
    try:
        _retrying(conn.begin)
        if not durable and engine.dialect.name == "postgresql" and not _durable_tracking():
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    except OperationalError as exc:
        if "readonly" not in str(exc):
            raise
        raise RoostError(  # a read-only file or folder (SQLite): a message, not the driver's traceback
            f"the store {redact_url(str(engine.url.render_as_string(False)))} is read-only: nothing was written",
            hint="check the permissions of the store file and of its folder (SQLite writes a -wal file beside it)",
        ) from None
    finally:
        conn.info["roost_write"] = False
        conn.close()


_readers: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def reader(engine: Engine) -> Engine:
    """The engine reads go through: on PostgreSQL the same pool in autocommit, on SQLite `engine` itself.

    A PostgreSQL read needs no BEGIN nor ROLLBACK (two round trips of the three a one-query read cost): under its
    default READ COMMITTED isolation each statement of a transaction takes its own snapshot anyway, so several
    statements see exactly what they would inside one. SQLite keeps its deferred transaction (one snapshot).
    """
    if engine.dialect.name != "postgresql":
        return engine
    found = _readers.get(engine)
    if found is None:
        found = _readers[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only session (a deferred transaction on SQLite; autocommit statements on PostgreSQL, see reader)."""
    with Session(bind=reader(engine), expire_on_commit=False) as session:
        yield session


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision stored in the database, or None when the schema is absent."""
    try:
        conn_cm = engine.connect()
    except DBAPIError as exc:  # OperationalError: unreachable server; DatabaseError: a damaged SQLite file
        damaged = engine.dialect.name == "sqlite" and not isinstance(exc, OperationalError)
        where = redact_url(str(engine.url.render_as_string(False)))
        raise RoostError(
            f"cannot {'open' if damaged else 'connect to'} the store {where}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}",
            hint="the SQLite file is damaged or not a roost store: restore it from a backup, or move it away and "
            "run `roost init` for a new one"
            if damaged
            else "check the server is running and the URL (host, port, user, database)",
        ) from None
    with conn_cm as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - table absent
            conn.rollback()
            return None


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest Alembic revision (creates it from empty), one process at a time.

    Concurrent first users of a new store all find no schema: on PostgreSQL a session-level advisory lock (on a
    connection of its own, held around the re-check and the upgrade) and on SQLite the write lock (BEGIN IMMEDIATE)
    make the others wait, re-read the revision and find it at head. The upgrade is one transaction: a migration
    that fails leaves the store as it was. Callers check current_revision first, so a store at head takes no lock.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    sqlite = engine.dialect.name == "sqlite"
    with _migration_lock(engine), engine.connect() as conn:
        if sqlite:
            conn.info["roost_write"] = True
            # A migration that rebuilds a table (copy, DROP, rename) would cascade the DROP to every child row
            # while foreign keys are enforced: off for the upgrade (only outside a transaction), checked before
            # the commit, on again after it.
            _driver_execute(conn, "PRAGMA foreign_keys=OFF")
        try:
            # begun here (BEGIN IMMEDIATE on SQLite: the write lock from now on), so Alembic runs every migration
            # in this one transaction instead of committing each on its own
            _retrying(conn.begin)
            if _locked_revision(conn) == HEAD_REVISION:
                log.debug("store already at %s (another process upgraded it)", HEAD_REVISION)
                return
            cfg.attributes["connection"] = conn
            _upgrade_to_head(cfg, command)
            if sqlite:
                _check_foreign_keys(conn)
            conn.commit()
        finally:
            conn.rollback()  # nothing after a commit; everything after a failure
            if sqlite:
                _driver_execute(conn, "PRAGMA foreign_keys=ON")
                conn.info["roost_write"] = False
    analyze(engine)  # new indexes get statistics (an upgraded store already holds rows; a new one is empty)


MIGRATION_LOCK_KEY = int.from_bytes(b"roostmig", "big")  # PostgreSQL advisory lock key (per database)
MIGRATION_WAIT_S = 1800.0  # how long a process waits for another one's upgrade (0007 takes ~82 s per 1M runs)


@contextlib.contextmanager
def _migration_lock(engine: Engine, wait_s: float | None = None) -> Iterator[None]:
    """PostgreSQL: hold the store's migration advisory lock (session-level, on a dedicated connection) meanwhile.

    SQLite needs none here: the upgrade's BEGIN IMMEDIATE is its lock. Waits at most `wait_s`
    (MIGRATION_WAIT_S), polling, then a RoostError; a dead holder's lock goes with its connection.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    limit = MIGRATION_WAIT_S if wait_s is None else wait_s
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        deadline, delay, told = time.monotonic() + limit, 0.01, False
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}).scalar():
            if time.monotonic() >= deadline:
                raise RoostError(
                    f"waited {limit:.0f} s for another process upgrading the schema of the store "
                    f"{redact_url(str(engine.url))}",
                    hint="let it finish (its session holds an advisory lock: see pg_locks / pg_stat_activity) and "
                    "retry; nothing was changed here",
                )
            if not told:
                log.info("waiting for another process to finish upgrading the store's schema")
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            except DBAPIError:  # the session is gone, and its lock with it; never pool a connection that may hold it
                conn.invalidate()


def _locked_revision(conn: Connection) -> str | None:
    """The revision as the lock holder sees it (no failed statement: PostgreSQL would abort the transaction)."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade_to_head(cfg: Any, command: Any) -> None:
    """Alembic's upgrade to head; a store written by a newer roost (a revision unknown here) is a RoostError."""
    from alembic.util.exc import CommandError

    try:
        command.upgrade(cfg, "head")
    except CommandError as exc:
        if "Can't locate revision" not in str(exc):
            raise
        raise RoostError(
            f"this repository was written by a newer roost ({exc}); this roost knows revisions up to {HEAD_REVISION}",
            hint="upgrade roost (pip install -U roost) to open it; nothing was changed",
        ) from None


def _driver_execute(conn: Connection, sql: str) -> None:
    """Run `sql` on the DBAPI connection itself (SQLite PRAGMAs that only work outside a transaction)."""
    driver = conn.connection.driver_connection
    if driver is not None:
        driver.execute(sql)


def _check_foreign_keys(conn: Connection) -> None:
    """Refuse to commit a SQLite migration that left a row pointing at nothing."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RoostError(
            f"the store's upgrade would leave {len(broken)} row(s) pointing at missing rows (first: {broken[0]})",
            hint="nothing was changed; report this with the store's roost version",
        )
