"""Notebooks: JupyterLab with the roost kernel, papermill runs recorded as runs, cell-level notebook diffs."""

from __future__ import annotations

from roost._lazy import lazy_api

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


__getattr__, __dir__ = lazy_api(__name__, _API)
