"""Placeholder: routes of the team server (filled by its owner)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from roost.server.settings import ServerSettings


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """The routes of this part of the server."""
    return []
