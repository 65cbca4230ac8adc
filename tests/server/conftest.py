"""Fixtures of the team server's identity tests: the real server app on the test workspace's store, with one
test-only route that says who is asking (the other parts' routes are not needed here)."""

from __future__ import annotations

import re
from typing import Any

import pytest


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
