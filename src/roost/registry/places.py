"""Where a client keeps its local state: the workspace's .roost folder, or ~/.cache/roost for a server client
that has no workspace (staged artifacts, downloaded models and artifacts)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """The current workspace's .roost folder; a server client without a workspace: $XDG_CACHE_HOME/roost."""
    from roost import workspace
    from roost.registry import credentials

    if credentials.server() is not None and workspace.find_root() is None and not os.environ.get("ROOST_WORKSPACE"):
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "roost"
    return workspace.current().state_dir


def staging_dir(run_id: str) -> Path:
    """The local folder where a run with a remote artifact root stages its artifacts: .roost/staging/RUN_ID."""
    return state_dir() / "staging" / run_id
