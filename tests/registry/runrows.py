"""Rows of the runs table for tests that bulk-insert a store (faster than creating runs one by one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def finished_run(rid: str, experiment_id: str, name: str, start: datetime) -> dict[str, Any]:
    """A FINISHED run row that started and ended at `start`."""
    return {
        "id": rid,
        "experiment_id": experiment_id,
        "name": name,
        "status": "FINISHED",
        "start_time": start,
        "end_time": start,
        "artifact_uri": f"file:///x/{rid}",
    }
