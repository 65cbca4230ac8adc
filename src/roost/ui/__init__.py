"""The repository web UI: server-rendered Starlette + Jinja2 pages, a JSON API and TensorBoard launching."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]


def create_app(**kwargs: Any) -> Starlette:
    """Build the UI's ASGI app (see roost.ui.app.create_app for the options)."""
    from roost.ui.app import create_app as _create

    return _create(**kwargs)
