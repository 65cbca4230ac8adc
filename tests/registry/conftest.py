"""Run the repository tests against both backends: SQLite (default) and a real PostgreSQL server.

Also moto's S3-compatible server, started on loopback, for the tests of artifacts on s3://.
"""

import os
import sys
from pathlib import Path

import pytest

import roost

sys.path.insert(0, str(Path(__file__).parent))  # for `runrows` (importlib import mode)

from helpers import ROOST_VARS, copy_workspace
from s3_helpers import MotoServer


@pytest.fixture(scope="session")
def pg_migrated(postgres_server):
    """A factory of fresh PostgreSQL databases with roost's schema: each is a copy (CREATE DATABASE … TEMPLATE) of
    one database migrated once per session, so a test does not run the migrations again."""
    import itertools

    import psycopg

    from roost.registry.store import open_store

    admin = postgres_server.replace("postgresql+psycopg", "postgresql") + "/postgres"
    template = f"roost_tpl_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{template}"')
    # migrate, then close its connections: PostgreSQL copies a template only while nobody is connected to it
    open_store(f"{postgres_server}/{template}", create=True).engine.dispose()
    counter = itertools.count(1)

    def new() -> str:
        name = f"roost_{os.getpid()}_m{next(counter)}"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return f"{postgres_server}/{name}"

    return new


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def ws(request, ws_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh workspace whose store is SQLite or a new database on the test PostgreSQL server (both migrated
    once per session and copied: see the root conftest's ws_template and pg_migrated above)."""
    from roost import workspace

    for var in ROOST_VARS:
        monkeypatch.delenv(var, raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("ROOST_STORE_URL", request.getfixturevalue("pg_migrated")())
    w = copy_workspace(ws_template, tmp_path / "ws")
    monkeypatch.chdir(w.root)
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
    w = roost.init(tmp_path / "w")
    monkeypatch.chdir(w.root)
    workspace.use(w)
    s3_env.ws = w  # type: ignore[attr-defined]
    yield s3_env
    workspace.use(None)
