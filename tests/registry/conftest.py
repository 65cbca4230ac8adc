"""Run the repository tests against both backends: SQLite (default) and a real PostgreSQL server.

Also moto's S3-compatible server, started on loopback, for the tests of artifacts on s3://.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `s3_helpers` (importlib import mode)

from s3_helpers import MotoServer


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


@pytest.fixture(scope="module")
def s3_server():
    """One moto S3 server for the module."""
    srv = MotoServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def s3_endpoint(s3_server):
    """The endpoint URL of the module's moto S3 server (bucket `roost-artifacts`)."""
    return s3_server.url


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch):
    """AWS test credentials and a function that points fsspec's s3 config at an endpoint (restored after)."""
    import fsspec.config

    saved = {k: dict(v) for k, v in fsspec.config.conf.items()}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret-key")  # tests of redaction look for "s3cret"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    def use(endpoint: str) -> None:
        monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", endpoint)
        fsspec.config.conf.clear()
        fsspec.config.set_conf_env(fsspec.config.conf)

    yield use
    fsspec.config.conf.clear()
    fsspec.config.conf.update(saved)


@pytest.fixture
def s3_workspace(s3_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A workspace (SQLite store) whose artifact root is s3://roost-artifacts/team-a; yields s3_env's function that
    points fsspec at an endpoint (call it first)."""
    from roost import workspace

    for var in ("ROOST_STORE_URL", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ROOST_ARTIFACTS", "s3://roost-artifacts/team-a")
    w = workspace.init(tmp_path / "w")
    monkeypatch.chdir(w.root)
    workspace.use(w)
    s3_env.ws = w  # type: ignore[attr-defined]
    yield s3_env
    workspace.use(None)
