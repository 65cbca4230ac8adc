"""A real `roost server` (uvicorn, 127.0.0.1, a free port, 2 workers) over a SQLite store in a temporary folder,
and a client environment (ROOST_SERVER / ROOST_TOKEN) that talks to it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.training.tensorboard import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def new_account(store: Any, name: str, password: str | None = None, admin: bool = False) -> str:
    """Create account `name` on `store` (a Store, or a database URL: migrated if new); returns a new token of it."""
    from roost.registry import accounts
    from roost.registry.store import open_store

    store = open_store(store) if isinstance(store, str) else store
    accounts.create_user(store, name, password, admin=admin)
    return accounts.create_token(store, name, name=f"{name} (tests)").token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of `token`."""
    return {"Authorization": f"Bearer {token}"}


class ServerProc:
    """One `roost server` subprocess (its own session: killed with its workers)."""

    def __init__(
        self,
        root: Path,
        workers: int = 2,
        max_upload_mb: float = 1.0,
        artifacts: str | None = None,
        env: dict[str, str] | None = None,
        store_url: str | None = None,
        default_role: str = "read",
        args: list[str] | None = None,
    ) -> None:
        self.root = root
        (root / "artifacts").mkdir(parents=True, exist_ok=True)
        self.store_url = store_url or f"sqlite:///{root / 'server.db'}"
        self.default_role, self.args = default_role, list(args or [])
        self.artifacts = artifacts or f"file://{root / 'artifacts'}"
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.max_upload_mb = workers, max_upload_mb
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = self.account("admin", admin=True)  # every client of this server signs in as this admin

    def account(self, name: str, password: str | None = None, admin: bool = False) -> str:
        """Create account `name` on the server's store; returns a new token of it."""
        return new_account(self.store_url, name, password, admin)

    def start(self) -> None:
        """Start it and wait until /api/v1/health answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "roost", "server", "--port", str(self.port), "--workers", str(self.workers)]
        cmd += ["--store", self.store_url, "--artifacts", self.artifacts, "--max-upload-mb", str(self.max_upload_mb)]
        cmd += ["--default-role", self.default_role, *self.args]
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text())
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()  # a server that never answered must not outlive the test (it would hold its port and workers)
        raise RuntimeError("server did not start: " + (self.root / "server.log").read_text())

    def kill(self) -> None:
        """SIGKILL the server and its workers (no graceful drain), and wait until the port is free."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if needed."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def headers(self) -> dict[str, str]:
        """Authorization for direct HTTP calls (the admin's token)."""
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def live_server(tmp_path: Path):
    """A running 2-worker server."""
    srv = ServerProc(tmp_path / "server")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def as_client(live_server: ServerProc, ws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Make this process a client of `live_server` (undo with `use_sql()`); returns a switch function."""
    server = live_server
    from roost.registry import backend

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def use(remote: bool) -> None:
        if remote:
            monkeypatch.setenv("ROOST_SERVER", server.url)
            monkeypatch.setenv("ROOST_TOKEN", server.token)
        else:
            monkeypatch.delenv("ROOST_SERVER", raising=False)
            monkeypatch.delenv("ROOST_TOKEN", raising=False)
        backend.reset()

    use(True)
    yield use
    use(False)


# -- the identity tests' in-process server (no subprocess) ----------------------------------------------------
def add_whoami(app: Any) -> None:
    """Mount /api/v1/whoami (GET and POST): the request's Identity as JSON, or 401 from the middleware."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from roost.server.identity import identity_of

    async def whoami(request: Request) -> JSONResponse:
        who = identity_of(request)
        return JSONResponse({"name": who.name, "admin": who.admin, "via": who.via, "groups": list(who.group_ids)})

    app.router.routes.insert(0, Route("/api/v1/whoami", whoami, methods=["GET", "POST"]))


@pytest.fixture
def server(ws: Any, tmp_path: Any) -> Any:
    """(settings, app, store) of a server on the workspace's store."""
    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    settings = ServerSettings(
        store_url=ws.store_url, artifact_root=f"file://{tmp_path}/artifacts", login_attempts_per_minute=10
    )
    app = create_server_app(settings)
    add_whoami(app)
    return settings, app, settings.store()


@pytest.fixture
def client(server: Any) -> Any:
    """A TestClient of the server, from 127.0.0.1 (Host 127.0.0.1)."""
    from starlette.testclient import TestClient

    return TestClient(server[1], base_url="http://127.0.0.1", client=("127.0.0.1", 40000), follow_redirects=False)


def csrf_of(html: str) -> str:
    """The CSRF token in a login/logout page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def whoami() -> Any:
    """add_whoami, for tests that build their own app."""
    return add_whoami
