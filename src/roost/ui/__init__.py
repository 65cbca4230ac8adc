"""The repository web UI: server-rendered Starlette + Jinja2 pages, a JSON API and TensorBoard launching."""

from __future__ import annotations

from typing import Any


def create_app(**kwargs: Any) -> Any:
    """Build the UI's ASGI app (see roost.ui.app.create_app for the options)."""
    from roost.ui.app import create_app as _create

    return _create(**kwargs)


__all__ = ["create_app"]
