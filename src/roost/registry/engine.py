"""Engine creation for the repository store: SQLite in WAL mode with immediate write transactions, or PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from roost.errors import RoostError, redact_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HEAD_REVISION = "0002_runs_experiment_start"


def make_engine(url: str) -> Engine:
    """Create an engine for `url`; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE for writes."""
    if url.startswith("sqlite"):
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

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("roost_write") else "BEGIN")

        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    args = {"connect_timeout": 5, "options": "-c timezone=utc"} if url.startswith("postgresql") else {}
    try:
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=args)
    except Exception as exc:
        raise RoostError(
            f"cannot open store {redact_url(url)}: {exc}", hint="for PostgreSQL install roost[postgres] (psycopg)"
        ) from exc


def _retrying(fn, attempts: int = 20):  # noqa: ANN001, ANN202
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
    return None


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in one write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
    conn = engine.connect()
    conn.info["roost_write"] = True
    try:
        _retrying(conn.begin)
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                yield session
                session.flush()
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    finally:
        conn.info["roost_write"] = False
        conn.close()


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only session (a deferred transaction)."""
    with Session(bind=engine, expire_on_commit=False) as session:
        yield session


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision stored in the database, or None when the schema is absent."""
    try:
        conn_cm = engine.connect()
    except OperationalError as exc:
        raise RoostError(
            f"cannot connect to the store {redact_url(str(engine.url.render_as_string(False)))}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}",
            hint="check the server is running and the URL (host, port, user, database)",
        ) from None
    with conn_cm as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - table absent
            conn.rollback()
            return None


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest Alembic revision (creates it from empty)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["roost_write"] = True
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
        conn.info["roost_write"] = False
