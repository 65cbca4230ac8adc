"""`roost nb run`: execute a notebook with papermill as a recorded run (params, executed notebook, metrics)."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import RoostError, closest
from roost.notebook.diff import ERROR_MARKER_TAG

log = logging.getLogger(__name__)

PARAMS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
TAG_HOWTO = (
    "tag the cell that sets the defaults: in JupyterLab select it, open the property inspector (gear "
    'icon, right sidebar) and add the tag `parameters`; or add "tags": ["parameters"] to that '
    'cell\'s "metadata" in the .ipynb file'
)


class NotebookFailed(RoostError):
    """A notebook raised while executing; the run is FAILED and the partial notebook logged."""

    def __init__(self, message: str, hint: str | None = None, run_id: str = "", output: Any = None) -> None:
        super().__init__(message, hint)
        self.run_id = run_id
        self.output = output


def parse_value(text: str) -> Any:
    """A `-p key=value` value: JSON (numbers, true/false/null, lists, quoted strings), True/False/None, else text."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse `key=value` strings into typed parameters."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RoostError(f"parameter {item!r} is not key=value", hint="write it as -p name=value, e.g. -p lr=0.1")
        out[key] = parse_value(value)
    return out


def _nb_read(path: Path) -> Any:
    """The notebook at `path` as an nbformat v4 node."""
    import nbformat

    read: Callable[..., Any] = nbformat.read  # unannotated in nbformat
    return read(str(path), as_version=4)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise RoostError(f"notebook {path} does not exist", hint="check the path (it is relative to the cwd)")
    try:
        return _nb_read(path)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a bad file
        raise RoostError(
            f"{path.name} is not a readable notebook: {str(exc).splitlines()[0][:200]}",
            hint="open it in JupyterLab and save it again, or check that it is .ipynb JSON",
        ) from None


def _param_names(source: str) -> set[str] | None:
    """Names assigned at top level of a parameters cell, or None when it is not plain Python."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.add(n.id)
    return names


def check_params(nb: Any, name: str, params: dict[str, Any]) -> None:
    """Refuse params for a notebook without a `parameters` cell, and names that cell does not define."""
    if not params:
        return
    bad = [k for k in params if not str(k).isidentifier()]
    if bad:
        raise RoostError(
            f"parameter name {bad[0]!r} is not a Python identifier",
            hint="use names like learning_rate (letters, digits, _)",
        )
    cells = [c for c in nb.cells if PARAMS_TAG in (c.get("metadata", {}).get("tags") or [])]
    if not cells:
        raise RoostError(
            f"{name} has no cell tagged '{PARAMS_TAG}', so -p values would have nowhere to go", hint=TAG_HOWTO
        )
    known = _param_names("".join(c.source for c in cells))
    if known is None:
        return
    for k in params:
        if k not in known:
            guess = closest(k, known)
            raise RoostError(
                f"parameter {k!r} is not set in the '{PARAMS_TAG}' cell of {name} "
                f"(it sets: {', '.join(sorted(known)) or 'nothing'})",
                hint=f"did you mean {guess!r}?" if guess else f"add `{k} = ...` to that cell first",
            )


def _record_value(v: Any) -> Any:
    return v if isinstance(v, (bool, int, float, str)) or v is None else json.dumps(v, default=str)


def _failed_cell(exc: Any, out_path: Path) -> str:
    """'cell N `first line`' for a papermill execution error (N counts the input notebook's cells from 1)."""
    idx = getattr(exc, "cell_index", None)
    first = (str(getattr(exc, "source", "") or "").strip().splitlines() or [""])[0]
    number = (idx if isinstance(idx, int) else 0) + 1
    if isinstance(idx, int):
        try:
            cells = _nb_read(out_path).cells
            cells = [c for c in cells if ERROR_MARKER_TAG not in (c.get("metadata", {}).get("tags") or [])]
            injected = sum(1 for c in cells[:idx] if INJECTED_TAG in (c.get("metadata", {}).get("tags") or []))
            number = idx - injected + 1
        except Exception:  # noqa: BLE001 - the message still names the source line
            pass
    first = first if len(first) <= 60 else first[:57] + "..."
    return f"cell {number} `{first}`"


def _parent_run_id() -> str | None:
    pipe = sys.modules.get("roost.pipeline.runner")
    return pipe.current_task_run_id() if pipe is not None and hasattr(pipe, "current_task_run_id") else None


def run_notebook(
    path: str | Path,
    params: dict[str, Any] | None = None,
    out: str | Path | None = None,
    experiment: str = "notebooks",
    timeout: float | None = None,
) -> dict[str, Any]:
    """Execute a notebook with papermill as a run: params recorded, executed notebook logged, metrics attached."""
    from roost import workspace
    from roost.registry import api

    params = dict(params or {})
    src = Path(path).expanduser().resolve()
    nb = _read(src)
    check_params(nb, src.name, params)
    ws = workspace.current()
    out_path = Path(out).expanduser().resolve() if out is not None else None
    if out_path is not None and out_path == src:
        raise RoostError(f"--out {out} would overwrite the input notebook", hint="write to another file")
    run = api.start_run(
        experiment=experiment,
        name=src.stem,
        parent_run_id=_parent_run_id(),
        params={k: _record_value(v) for k, v in params.items()},
        tags={"roost.kind": "notebook", "roost.notebook": str(src)},
    )
    tmp = tempfile.TemporaryDirectory(prefix="roost-nb-") if out_path is None else None
    if tmp is not None:
        out_path = Path(tmp.name) / src.name
    assert out_path is not None
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        status, error = _execute(src, out_path, params, ws, run.id, timeout)
        artifact = run.log_artifact(out_path) if out_path.exists() else None
        run.end(status)
    except BaseException as exc:  # Ctrl-C or an unexpected error: keep what ran, close the run
        if out_path.exists():
            run.log_artifact(out_path)
        run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        if tmp is not None:
            tmp.cleanup()
        raise
    output: Any = out_path
    if tmp is not None:
        from roost import artifacts

        output = artifacts.local_path(artifact) if artifact and artifacts.is_local(artifact) else artifact
        tmp.cleanup()
    if error is not None:
        raise NotebookFailed(
            f"{src.name} failed in {error} (run {run.id[:8]} marked FAILED)",
            hint=f"the partly executed notebook is logged to run {run.id} as {out_path.name}; "
            "open it to see the traceback",
            run_id=run.id,
            output=output,
        )
    return {"run_id": run.id, "output": output, "artifact": artifact, "status": status}


def _execute(
    src: Path, out_path: Path, params: dict[str, Any], ws: Any, run_id: str, timeout: float | None
) -> tuple[str, str | None]:
    """Run papermill on the roost kernel attached to `run_id`; returns (status, one-line error or None)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from roost.notebook.kernel import kernel_manager_class

    try:
        papermill.execute_notebook(
            str(src),
            str(out_path),
            parameters=params,
            kernel_name="roost",
            language="python",
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            kernel_manager_class=kernel_manager_class(ws, run_id),
            resources={"metadata": {"path": str(src.parent)}},  # kernel cwd, without papermill's os.chdir
        )
    except PapermillExecutionError as exc:
        evalue = (str(exc.evalue or "").splitlines() or [""])[0][:200]
        return "FAILED", f"{_failed_cell(exc, out_path)}: {exc.ename}: {evalue}"
    except Exception as exc:
        log.debug("notebook execution failed", exc_info=True)
        return "FAILED", f"execution: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    return "FINISHED", None
