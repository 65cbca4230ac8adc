"""The roost kernel: the current interpreter with the workspace configured, and `attach()` to a run by id."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KERNEL_NAME = "roost"
RUN_ID_ENV = "ROOST_RUN_ID"
# Run at kernel start: attaches to $ROOST_RUN_ID when set (a `roost nb run`), does nothing otherwise.
STARTUP = "import roost.notebook.kernel as _roost_k; _roost_k.attach(); del _roost_k"


def kernel_env(ws: Any, run_id: str | None = None) -> dict[str, str]:
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


def kernel_spec_dict(ws: Any, env: dict[str, str]) -> dict[str, Any]:
    """The kernel.json content of the roost kernel for workspace `ws`, with `env` added to the kernel's."""
    return {
        "argv": kernel_argv(),
        "display_name": f"Python (roost: {ws.project})",
        "language": "python",
        "env": env,
        "metadata": {"debugger": True, "supported_encryption": ["curve"]},
    }


def write_kernelspec(ws: Any) -> Path:
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


def kernel_manager_class(ws: Any, run_id: str | None) -> type:
    """An AsyncKernelManager class that always starts the roost kernel (no kernelspec lookup on disk)."""
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
        def kernel_spec(self) -> KernelSpec:  # type: ignore[override]
            return spec

    return RoostKernelManager


def attach(run_id: str | None = None) -> Any:
    """Make roost.log_metric in this process log to run `run_id` (default $ROOST_RUN_ID); None when unset."""
    run_id = run_id or os.environ.get(RUN_ID_ENV)
    if not run_id:
        return None
    from roost.registry import api
    from roost.registry.store import default_store

    for r in api._active:
        if r.id == run_id:
            return r
    st = default_store()
    run = _attached_class()(st, st.get_run(run_id))
    api._active.append(run)
    _flush_after_each_cell(run)
    return run


def _attached_class() -> type:
    """A Run whose lifecycle belongs to the process that started it: ending it only flushes and detaches."""
    from roost.registry import api

    class AttachedRun(api.Run):
        """A run opened elsewhere (by `roost nb run`); this process logs to it but does not close it."""

        def end(self, status: str = "FINISHED") -> None:
            """Flush buffered metrics and detach; the owning process sets the final status."""
            if self._ended:
                return
            self._stop.set()
            self._ended = True
            if self in api._active:
                api._active.remove(self)
            self.flush()

    return AttachedRun


def _flush_after_each_cell(run: Any) -> None:
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
