"""The offline engine interface: point-in-time joins and latest-row extraction over registered sources.

Two engines implement it: `local` (DuckDB reads, NumPy sorts; one process, the default) and `spark` (Spark jobs
on `local[*]` or a cluster). `offline: {engine: spark, master: ...}` in roost.yaml or ROOST_OFFLINE_ENGINE
chooses; `training_set`, `roost train` with data.entities and `materialize` all go through `get_engine`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from roost.workspace import offline_engine

if TYPE_CHECKING:
    import pyarrow as pa

    from roost.features.refs import Selection
    from roost.workspace import Workspace

__all__ = ["OfflineEngine", "get_engine", "offline_engine"]


class OfflineEngine(Protocol):
    """What an offline engine does; both engines (`local_engine.LocalEngine`, `spark_engine.SparkEngine`) give
    identical results (tests/features run each)."""

    name: str
    chunked: bool  # True: materialisation writes chunk by chunk; False: all views in one atomic write

    def join(self, sel: Selection, ent: pa.Table, event_time: str, root: Path) -> dict[str, Any]:
        """Output column -> Arrow values, one per row of `ent` (join keys, `event_time`, __rid = 0..n-1)."""
        ...

    def latest(
        self, spec: dict[str, Any], src: dict[str, Any], root: Path, start: datetime | None, end: datetime | None
    ) -> Iterator[pa.Table]:
        """A view's latest row per entity (event time in [start, end]) in bounded chunks: keys, fields, __et, __ct
        (UTC microseconds, null = -infinity), fields not yet NaN-cleaned or cast."""
        ...


def get_engine(ws: Workspace | None = None) -> OfflineEngine:
    """The workspace's offline engine (roost.yaml `offline.engine`, ROOST_OFFLINE_ENGINE overrides)."""
    from roost import workspace

    ws = ws or workspace.current()
    cfg = dict(ws.offline)
    if offline_engine(os.environ.get("ROOST_OFFLINE_ENGINE"), cfg.get("engine")) == "spark":
        from roost.features.spark_engine import SparkEngine

        return SparkEngine(cfg)
    from roost.features.local_engine import LocalEngine

    return LocalEngine()
