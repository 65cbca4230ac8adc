"""Data sets: a generated engagement log with time-varying features, and loaders for files, SQL and bundled data.

Importing this package imports no heavy library; each name loads its module on first use.
"""

from __future__ import annotations

from roost._lazy import lazy_api

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


__getattr__, __dir__ = lazy_api(__name__, _API)
