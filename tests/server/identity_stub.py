"""uvicorn factory for the MLflow-client test: the real server app, with HTTP Basic user names taken as the identity.

A stand-in for the auth middleware while it is a placeholder (SERVER-CONTRACT.md): once roost.server.auth checks
passwords, the test creates a real account and uses `roost.server.app:app_from_env` instead.
"""

from __future__ import annotations

import base64
from typing import Any

from roost.server.app import create_server_app
from roost.server.identity import SCOPE_KEY, Identity


def app() -> Any:
    """create_server_app() behind a layer that turns `Authorization: Basic NAME:…` into Identity(NAME)."""
    inner = create_server_app()

    async def with_identity(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if auth.startswith(b"Basic "):
                name = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
                scope[SCOPE_KEY] = Identity(name=name, account_id=1, via="basic")
        await inner(scope, receive, send)

    return with_identity
