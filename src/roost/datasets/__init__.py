"""Data sets: a generated engagement log with time-varying features, and loaders for files, SQL and bundled data.

Importing this package imports no heavy library; each name loads its module on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "load": "roost.datasets.loaders:load",
    "fingerprint": "roost.datasets.loaders:fingerprint",
    "make_engagement": "roost.datasets.engagement:make_engagement",
    "make_engagement_flat": "roost.datasets.engagement:make_engagement_flat",
    "pit_join": "roost.datasets.joins:pit_join",
    "latest_join": "roost.datasets.joins:latest_join",
    "delay_frame": "roost.datasets.flights:delay_frame",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
