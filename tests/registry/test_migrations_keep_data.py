"""Upgrading a store keeps every row: a store at each earlier revision, one row in every table, opened by today's
code (which migrates it to head) still has every row.

SQLite migrations that rebuild a table (Alembic's batch mode: copy, DROP, rename) cascade the DROP to child tables
while foreign keys are enforced; upgrading a workspace made by the previous release deleted every param, metric
and tag that way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from roost.registry.engine import HEAD_REVISION, MIGRATIONS_DIR, current_revision, make_engine
from roost.registry.store import Store, reset_default


def _revisions() -> list[str]:
    """Every revision before head, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    revs = [r.revision for r in script.walk_revisions()][::-1]
    return [r for r in revs if r != HEAD_REVISION]


def _value(col: sa.Column[object]) -> object:
    """One valid value for `col` (the same for every key column, so foreign keys point at the parent's row)."""
    t = col.type
    if isinstance(t, sa.Boolean):
        return False
    if isinstance(t, sa.Integer):
        return 1
    if isinstance(t, sa.Float | sa.Numeric):
        return 0.5
    if isinstance(t, sa.DateTime):
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if isinstance(t, sa.LargeBinary):
        return b"x"
    if col.name == "status":
        return "FINISHED"
    if col.name == "lifecycle_stage":
        return "active"
    return "k1"


def _store_at(revision: str, path: Path) -> tuple[str, dict[str, int]]:
    """A SQLite store migrated to `revision` holding one row in every table; (url, rows per table)."""
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{path}"
    eng = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with eng.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    meta = sa.MetaData()
    meta.reflect(eng)
    with eng.begin() as conn:
        for table in meta.sorted_tables:
            if table.name == "alembic_version":
                continue
            conn.execute(table.insert().values({c.name: _value(c) for c in table.columns}))
    with eng.connect() as conn:
        counts = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in meta.tables}
    eng.dispose()
    return url, counts


@pytest.mark.parametrize("revision", _revisions())
def test_opening_an_older_store_keeps_every_row(tmp_path: Path, revision: str) -> None:
    url, before = _store_at(revision, tmp_path / "old.db")
    assert all(n == 1 for t, n in before.items() if t != "alembic_version"), before
    reset_default()
    st = Store(url)
    st.ensure_schema()  # what any roost command does on an older store
    assert current_revision(st.engine) == HEAD_REVISION
    with st.engine.connect() as conn:
        after = {t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in before}
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    assert after == before, f"rows lost upgrading from {revision}: {before} -> {after}"
    assert broken == []
    st.engine.dispose()
    reset_default()


def test_a_store_from_a_newer_roost_is_a_clear_error(tmp_path: Path) -> None:
    from roost.errors import RoostError

    url = f"sqlite:///{tmp_path / 'new.db'}"
    reset_default()
    st = Store(url)
    st.ensure_schema(create=True)
    with st.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0999_from_the_future'"))
    st.engine.dispose()
    reset_default()
    with pytest.raises(RoostError) as e:
        Store(url).ensure_schema()
    assert "newer roost" in e.value.message and "upgrade roost" in (e.value.hint or "")
    reset_default()
