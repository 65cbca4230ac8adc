"""Notebooks: JupyterLab with the roost kernel, papermill runs recorded as runs, cell-level notebook diffs."""
from __future__ import annotations

import importlib
from typing import Any

_API = {
    "launch": "roost.notebook.server:launch",
    "NotebookServer": "roost.notebook.server:NotebookServer",
    "run_notebook": "roost.notebook.runner:run_notebook",
    "parse_params": "roost.notebook.runner:parse_params",
    "diff": "roost.notebook.diff:diff",
    "NotebookDiff": "roost.notebook.diff:NotebookDiff",
    "CellChange": "roost.notebook.diff:CellChange",
    "attach": "roost.notebook.kernel:attach",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        mod, attr = _API[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'roost.notebook' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
