"""The repository's store file damaged under a workspace, and run-id prefixes that are LIKE wildcards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOST_VARS, copy_workspace
from roost.errors import NotFoundError, RoostError


@pytest.fixture
def sqlite_ws(ws_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh SQLite workspace (the store file is what these tests damage), made current."""
    from roost import workspace

    for var in ROOST_VARS:
        monkeypatch.delenv(var, raising=False)
    w = copy_workspace(ws_template, tmp_path / "ws")
    monkeypatch.chdir(w.root)
    workspace.use(w)
    yield w
    workspace.use(None)


def _roost(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    return subprocess.run(
        [sys.executable, "-m", "roost", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("damage", ["torn", "garbage"])
def test_a_torn_store_file_is_a_clear_error(sqlite_ws, damage: str) -> None:
    """A store file cut in half (a copy interrupted, a full disk) or overwritten: a message naming the store and
    what to do, exit 2, no traceback (was sqlalchemy's DatabaseError: 'database disk image is malformed')."""
    from roost import workspace
    from roost.registry import api

    with api.start_run() as run:
        run.log_param("p", 1)
    workspace.use(None)  # closes the store's connections (no WAL left beside the file)
    db = Path(sqlite_ws.root) / ".roost" / "roost.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2] if damage == "torn" else b"not a database at all, " * 100)
    before = db.read_bytes()
    res = _roost(Path(sqlite_ws.root), "runs", "list")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert "roost.db" in res.stderr and "backup" in res.stderr
    workspace.use(sqlite_ws)
    with pytest.raises(RoostError, match="roost.db"):
        api.get_run(run.id)
    assert db.read_bytes() == before  # nothing written into the damaged file


def test_like_wildcards_are_not_run_id_prefixes(sqlite_ws, cli) -> None:
    """'%' and '_' matched any run as a 'unique prefix' when the store held one: `roost runs tag % k=v` tagged it."""
    from roost.registry import api

    with api.start_run() as run:
        pass
    for prefix in ("%", "_", "%" + run.id[-3:], "_" + run.id[1:6]):
        with pytest.raises(NotFoundError):
            api.get_run(prefix)
    code, _out, err = cli("runs", "tag", "%", "k=v")
    assert code == 2 and "not found" in err
    assert api.get_run(run.id[:6])["tags"] == {}


@pytest.mark.parametrize("value", ["inf", "nan", "1e999", "-5", "abc"])
def test_a_bad_heartbeat_timeout_is_a_clear_error(sqlite_ws, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """ROOST_HEARTBEAT_TIMEOUT_S=inf (or nan) made every read (`roost runs list`, get_run) raise OverflowError /
    ValueError from timedelta; `roost runs gc --timeout 1e999` too."""
    from roost.registry import api
    from roost.registry.store import default_store

    monkeypatch.setenv("ROOST_HEARTBEAT_TIMEOUT_S", value)
    default_store()._next_reap = 0.0  # the next read scans for stale runs (it is throttled)
    with pytest.raises(RoostError, match="ROOST_HEARTBEAT_TIMEOUT_S"):
        api.search_runs()
    res = _roost(Path(sqlite_ws.root), "runs", "gc", "--timeout", "1e999")
    assert res.returncode == 2 and "Traceback" not in res.stderr and "timeout" in res.stderr


@pytest.mark.parametrize(("args", "field"), [(["--limit", "-5"], "limit")])
def test_negative_limit_is_refused(sqlite_ws, cli, args: list[str], field: str) -> None:
    """--limit -5 listed every run on SQLite (LIMIT -1 means none) and is an SQL error on PostgreSQL."""
    code, _out, err = cli("runs", "list", *args)
    assert code == 2 and field in err


def test_huge_limit_means_all(sqlite_ws) -> None:
    """--limit 99999999999999999999 raised OverflowError from the driver."""
    from roost.registry import api

    with api.start_run():
        pass
    assert len(api.search_runs(limit=10**20)) == 1
    with pytest.raises(RoostError, match="offset"):
        api.search_runs(offset=-1)


def test_a_read_only_store_is_a_clear_error(sqlite_ws, cli) -> None:
    """Writes to a store SQLite can only read (a read-only file, or a read-only mount) raised sqlalchemy's
    OperationalError 'attempt to write a readonly database' with a traceback; reads keep working."""
    from sqlalchemy import event

    from roost.registry import api
    from roost.registry.store import default_store

    with api.start_run() as run:
        pass
    api.register_model(None, "m", str(sqlite_ws.root))
    engine = default_store().engine

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn, _rec) -> None:  # as a file without write permission (root ignores chmod)
        dbapi_conn.execute("PRAGMA query_only=ON")

    engine.dispose()
    assert api.get_run(run.id)["status"] == "FINISHED"
    with pytest.raises(RoostError, match="read-only"):
        api.tag_run(run.id, {"k": "v"})
    code, _out, err = cli("models", "alias", "m", "1", "prod")
    assert code == 2 and "read-only" in err
    event.remove(engine, "connect", _read_only)
    engine.dispose()
    assert api.get_run(run.id)["tags"] == {} and api.list_models()[0]["aliases"] == {}
