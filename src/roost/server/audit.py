"""Placeholder: the audit middleware (filled by its owner)."""

from __future__ import annotations

from roost.netpolicy.auth import ASGIApp, Receive, Scope, Send
from roost.server.settings import ServerSettings


class AuditMiddleware:
    """Record every write and every refused request in the audit log."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
