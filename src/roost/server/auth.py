"""Placeholder: authentication middleware and login routes (filled by its owner)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from roost.netpolicy.auth import ASGIApp, Receive, Scope, Send
from roost.server.settings import ServerSettings


class AuthMiddleware:
    """Resolve the request's credentials to an Identity (scope[identity.SCOPE_KEY])."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """/login and /logout."""
    return []
