"""Run the repository tests against both backends: SQLite (default) and a real PostgreSQL server."""
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def ws(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh workspace whose store is SQLite or a new database on the test PostgreSQL server."""
    from roost import workspace

    for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("ROOST_STORE_URL", request.getfixturevalue("pg_database")())
    root = tmp_path / "ws"
    w = workspace.init(root)
    monkeypatch.chdir(root)
    workspace.use(w)
    yield w
    workspace.use(None)
