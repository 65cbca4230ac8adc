"""The roost kernel: the current interpreter with the workspace configured, and `attach()` to a run by id."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.registry.run import Run
    from roost.workspace import Workspace

log = logging.getLogger(__name__)

KERNEL_NAME = "roost"
RUN_ID_ENV = "ROOST_RUN_ID"
# Run at kernel start: attaches to $ROOST_RUN_ID when set (a `roost notebook run`), does nothing otherwise.
STARTUP = "import roost.notebook.kernel as _roost_k; _roost_k.attach(); del _roost_k"


def kernel_env(ws: Workspace, run_id: str | None = None) -> dict[str, str]:
    """Environment that points a kernel at workspace `ws` (and at run `run_id` when given)."""
    env = {"ROOST_WORKSPACE": str(ws.root), "ROOST_STORE_URL": ws.store_url, "ROOST_ARTIFACTS": ws.artifacts}
    if run_id:
        env[RUN_ID_ENV] = run_id
    return env


def kernel_argv() -> list[str]:
    """Command line of the roost kernel: this interpreter running ipykernel with the attach hook."""
    return [
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
        f"--IPKernelApp.exec_lines={STARTUP}",
    ]


def kernel_spec_dict(ws: Workspace, env: dict[str, str]) -> dict[str, Any]:
    """The kernel.json content of the roost kernel for workspace `ws`, with `env` added to the kernel's."""
    return {
        "argv": kernel_argv(),
        "display_name": f"Python (roost: {ws.project})",
        "language": "python",
        "env": env,
        "metadata": {"debugger": True, "supported_encryption": ["curve"]},
    }


def write_kernelspec(ws: Workspace) -> Path:
    """Write the roost kernelspec under the workspace's .roost/jupyter; returns the folder for JUPYTER_PATH."""
    base = ws.state_dir / "jupyter"
    kdir = base / "kernels" / KERNEL_NAME
    kdir.mkdir(parents=True, exist_ok=True)
    # on disk only the workspace folder: a store URL may hold a password (the server's env carries it)
    text = json.dumps(kernel_spec_dict(ws, {"ROOST_WORKSPACE": str(ws.root)}), indent=1)
    path = kdir / "kernel.json"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return base


def kernel_manager_class(ws: Workspace, run_id: str | None, stderr: Path | None = None) -> type:
    """An AsyncKernelManager class that always starts the roost kernel (no kernelspec lookup on disk).

    With `stderr`, the kernel process writes its stderr there (appending) instead of to this process's terminal:
    ipykernel's own tracebacks when a run stops it (timeout, Ctrl-C) would otherwise land in the user's shell."""
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    spec = KernelSpec(resource_dir="", **kernel_spec_dict(ws, kernel_env(ws, run_id)))
    encryption = "disabled"
    try:
        import zmq

        encryption = "auto" if zmq.has("curve") else "disabled"  # CurveZMQ-encrypted loopback when available
    except ImportError:
        pass

    class RoostKernelManager(AsyncKernelManager):
        """Starts the roost kernel whatever kernel the notebook names."""

        def __init__(self, **kw: Any) -> None:
            kw.setdefault("transport_encryption", encryption)
            super().__init__(**kw)

        @property
        def kernel_spec(self) -> KernelSpec:
            return spec

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if stderr is None:
                await super()._async_launch_kernel(kernel_cmd, **kw)
                return
            with open(stderr, "ab") as err:  # the child keeps its own copy of the descriptor
                await super()._async_launch_kernel(kernel_cmd, **{"stderr": err, **kw})

    return RoostKernelManager


def attach(run_id: str | None = None) -> Run | None:
    """Make roost.log_metric in this process log to run `run_id` (default $ROOST_RUN_ID); None when unset.

    The run belongs to the process that started it (`roost notebook run`): here it is only flushed (after every cell and
    at exit) and detached, never closed.
    """
    run_id = run_id or os.environ.get(RUN_ID_ENV)
    if not run_id:
        return None
    from roost.registry.run import attach_run

    run = attach_run(run_id)
    _flush_after_each_cell(run)
    return run


def _flush_after_each_cell(run: Run) -> None:
    """Under IPython, write buffered metrics after every cell so a crash or kill loses nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is None:
        return

    def _flush(*_: Any) -> None:
        try:
            run.flush()
        except Exception as exc:  # noqa: BLE001 - never break the user's cell; retried by the flusher
            log.warning("roost: metric flush failed: %s", exc)

    ip.events.register("post_run_cell", _flush)
