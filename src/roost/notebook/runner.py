"""`roost notebook run`: execute a notebook with papermill as a recorded run (params, executed notebook, metrics)."""

from __future__ import annotations

import json
import keyword
import logging
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import RoostError, closest
from roost.notebook.diff import ERROR_MARKER_TAG

log = logging.getLogger(__name__)

PARAMS_TAG = "parameters"
RECORD_MAX = 500  # longest parameter value a run records
KERNEL_STDERR = "kernel-stderr.log"  # the kernel's stderr, logged to the run when not empty
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
    bad = [k for k in params if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise RoostError(
            f"parameter name {bad[0]!r} is not a Python identifier",
            hint="use names like learning_rate (letters, digits, _)",
        )
    kw = [k for k in params if keyword.iskeyword(k)]
    if kw:
        raise RoostError(
            f"parameter name {kw[0]!r} is a Python keyword: `{kw[0]} = ...` cannot be injected",
            hint=f"rename it in the '{PARAMS_TAG}' cell, e.g. {kw[0]}_",
        )
    for k, v in params.items():
        check_value(k, v)
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


def check_value(name: str, value: Any, path: str = "") -> None:
    """Refuse a parameter value papermill cannot write as Python and JSON: only None, bool, int, float, str, and
    lists/tuples/dicts (str keys) of those."""
    where = f"parameter {name!r}" + (f" at {path}" if path else "")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_value(name, v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise RoostError(
                    f"{where} has a {type(k).__name__} key {k!r}: notebook parameters are JSON, keys must be text",
                    hint="use str keys (e.g. str(key))",
                )
            check_value(name, v, f"{path}[{k!r}]")
        return
    raise RoostError(
        f"{where} is a {type(value).__module__}.{type(value).__name__}: notebook parameters must be None, bool, "
        "int, float, str, or lists/dicts of those",
        hint="convert it first: a numpy value with .tolist(), a date with .isoformat(), a set with sorted(...)",
    )


def check_timeout(timeout: float | None) -> int | None:
    """--timeout as whole seconds for papermill (a fraction rounds up); RoostError for 0, negative, NaN or inf."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise RoostError(
            f"--timeout {timeout!r} is not a number of seconds > 0",
            hint="give the seconds a cell may run, e.g. --timeout 600; leave it out for no limit",
        )
    return math.ceil(timeout)


def _record_value(v: Any) -> Any:
    """A parameter as the run records it: scalars as they are, lists/dicts as JSON; long text cut to RECORD_MAX
    characters (the notebook gets the whole value; the run's params are for reading and comparing)."""
    rec = v if isinstance(v, (bool, int, float, str)) or v is None else json.dumps(v, default=str)
    if isinstance(rec, str) and len(rec) > RECORD_MAX:
        note = f"… ({len(rec):,} characters)"
        rec = rec[: RECORD_MAX - len(note)] + note
    return rec


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
    timeout = check_timeout(timeout)
    ws = workspace.current()
    out_path = Path(out).expanduser().resolve() if out is not None else None
    if out_path is not None:
        _check_out(out_path, src, str(out))
    run = api.start_run(
        experiment=experiment,
        name=src.stem,
        parent_run_id=_parent_run_id(),
        params={k: _record_value(v) for k, v in params.items()},
        tags={"roost.kind": "notebook", "roost.notebook": str(src)},
    )
    tmp = tempfile.TemporaryDirectory(prefix="roost-nb-") if out_path is None else None
    log_dir = tempfile.TemporaryDirectory(prefix="roost-nb-log-")
    logs = Path(log_dir.name)
    if tmp is not None:
        out_path = Path(tmp.name) / src.name
    assert out_path is not None
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        status, error = _execute(src, out_path, params, ws, run.id, timeout, logs / KERNEL_STDERR)
        artifact = run.log_artifact(out_path) if out_path.is_file() else None
        _log_kernel_stderr(run, logs / KERNEL_STDERR)
        run.end(status)
    except BaseException as exc:  # Ctrl-C or an unexpected error: keep what ran, close the run
        if out_path.is_file():
            run.log_artifact(out_path)
        _log_kernel_stderr(run, logs / KERNEL_STDERR)
        run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        if tmp is not None:
            tmp.cleanup()
        log_dir.cleanup()
        raise
    log_dir.cleanup()
    output: Any = out_path
    if tmp is not None:
        from roost import artifacts

        output = artifacts.local_path(artifact) if artifact and artifacts.is_local(artifact) else artifact
        tmp.cleanup()
    if error is not None:
        more = "; raise --timeout (seconds a cell may run) if the cell needs longer" if " timed out " in error else ""
        raise NotebookFailed(
            f"{src.name} failed in {error} (run {run.id[:8]} marked FAILED)",
            hint=f"the partly executed notebook is logged to run {run.id} as {out_path.name}; "
            f"open it to see the traceback{more}",
            run_id=run.id,
            output=output,
        )
    return {"run_id": run.id, "output": output, "artifact": artifact, "status": status}


def _check_out(out_path: Path, src: Path, shown: str) -> None:
    """Refuse an --out that is the input, a folder, or under a file; make its folder (before any run starts)."""
    if out_path == src:
        raise RoostError(f"--out {shown} would overwrite the input notebook", hint="write to another file")
    if out_path.exists() and not out_path.is_file():
        raise RoostError(
            f"--out {shown} is a {'folder' if out_path.is_dir() else 'special file'}, not a notebook file",
            hint=f"name a file, e.g. --out {Path(shown) / src.name}",
        )
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RoostError(
            f"--out {shown}: cannot create its folder {out_path.parent}: {exc.strerror or exc}",
            hint="a part of that path is a file, or it is not writable; choose another --out",
        ) from None


def _running_cell(out_path: Path) -> str | None:
    """'cell N `first line`' for the last cell papermill started in the output notebook (the one that was running
    when the kernel died or a cell timed out), counting the input notebook's cells; None when unknown."""
    try:
        cells = _nb_read(out_path).cells
    except Exception:  # noqa: BLE001 - only improves the message
        return None
    cells = [c for c in cells if ERROR_MARKER_TAG not in (c.get("metadata", {}).get("tags") or [])]
    started = [
        i for i, c in enumerate(cells) if ((c.get("metadata", {}).get("papermill") or {}).get("start_time") is not None)
    ]
    if not started:
        return None
    idx = started[-1]
    injected = sum(1 for c in cells[:idx] if INJECTED_TAG in (c.get("metadata", {}).get("tags") or []))
    first = (str(cells[idx].get("source") or "").strip().splitlines() or [""])[0]
    first = first if len(first) <= 60 else first[:57] + "..."
    return f"cell {idx - injected + 1} `{first}`"


def _log_kernel_stderr(run: Any, path: Path) -> None:
    """Log what the kernel wrote to stderr (native libraries, ipykernel's own errors) when it wrote anything."""
    try:
        if path.is_file() and path.stat().st_size:
            run.log_artifact(path)
    except Exception as exc:  # noqa: BLE001 - the notebook itself is what matters
        log.warning("could not log %s: %s", path.name, exc)


def _execute(
    src: Path,
    out_path: Path,
    params: dict[str, Any],
    ws: Any,
    run_id: str,
    timeout: float | None,
    stderr: Path | None = None,
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
            kernel_manager_class=kernel_manager_class(ws, run_id, stderr),
            resources={"metadata": {"path": str(src.parent)}},  # kernel cwd, without papermill's os.chdir
        )
    except PapermillExecutionError as exc:
        evalue = (str(exc.evalue or "").splitlines() or [""])[0][:200]
        return "FAILED", f"{_failed_cell(exc, out_path)}: {exc.ename}: {evalue}"
    except Exception as exc:
        log.debug("notebook execution failed", exc_info=True)
        kind = type(exc).__name__
        cell = _running_cell(out_path) if kind in ("DeadKernelError", "CellTimeoutError") else None
        if cell is not None and kind == "DeadKernelError":
            return "FAILED", f"{cell}: the kernel died (os._exit, a crash in native code, or out of memory)"
        if cell is not None and kind == "CellTimeoutError":
            return "FAILED", f"{cell}: timed out after {timeout:g} s" if timeout else f"{cell}: timed out"
        return "FAILED", f"execution: {kind}: {(str(exc).splitlines() or [''])[0][:200]}"
    return "FINISHED", None
