"""Start TensorBoard on a run's event folder and wait until it answers.

TensorBoard has no authentication and answers any Host header, so a board roost starts serves only under a random
path prefix (128 bits): the URL printed to the user is the capability, as Jupyter's token URL is. The prefix reaches
TensorBoard through a flag file readable by this user only (never its command line, which `ps` shows to everyone),
deleted once TensorBoard answers. Other paths on the port, and a DNS-rebinding page that finds it, get 404.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roost.errors import RoostError

TB_SUBDIR = "tensorboard"  # the UI looks for events in the same place (roost.ui.tensorboard)
TB_LOGS_TAG = "roost.tensorboard_logs"  # "RUN_ID:PATH" where a run's events live on another run (auto's children)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def run_logdir(run_id: str) -> Path:
    """The TensorBoard event folder of a run (an error when the run has none)."""
    from roost.errors import NotFoundError
    from roost.registry.api import get_run, local_artifact

    run = get_run(run_id)
    try:  # a run on a remote root: its events come down once into the workspace's cache
        d: Path | None = local_artifact(run, TB_SUBDIR)
    except NotFoundError:
        d = None
    ref = str((run.get("tags") or {}).get(TB_LOGS_TAG) or "")
    if (d is None or not d.is_dir()) and ":" in ref:  # an `auto` child: its events are on the parent run
        owner, path = ref.split(":", 1)
        try:
            d = local_artifact(get_run(owner), path)
        except NotFoundError:
            d = None
        if d is None or not d.is_dir():
            raise RoostError(
                f"run {run['run_id']} logs TensorBoard events on run {owner} ({path}), which has none now",
                hint=f"roost tensorboard {owner}",
            )
    if d is None or not d.is_dir():
        raise RoostError(f"run {run['run_id']} has no TensorBoard logs", hint="runs of torch models write them")
    return d


def private_flagfile(text: str) -> Path:
    """A new file readable by this user only (mode 0600 from creation) holding `text` (TensorBoard's --flagfile)."""
    fd, name = tempfile.mkstemp(prefix="roost-tb-", suffix=".flags")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(name)


def new_prefix() -> str:
    """A random URL path prefix ('/' + 32 hex digits) that only the holder of the board's URL knows."""
    return "/" + secrets.token_hex(16)


def start(
    logdir: Path | str, port: int | None = None, host: str = "127.0.0.1", timeout: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start TensorBoard on `logdir` under a random path prefix, wait for HTTP 200; returns (process, its URL)."""
    port = port or free_port(host)
    Path(logdir).mkdir(parents=True, exist_ok=True)
    prefix = new_prefix()
    flags = private_flagfile(f"--path_prefix={prefix}\n")
    errlog = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", host, "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--flagfile", str(flags)],
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    errlog.close()  # the child holds its own handle
    shown = f"[{host}]" if ":" in host else host
    try:
        return proc, _wait_until_answering(proc, f"http://{shown}:{port}{prefix}/", logdir, timeout)
    finally:
        flags.unlink(missing_ok=True)  # read at start: the prefix now lives only in the URL


def _wait_until_answering(proc: subprocess.Popen[bytes], url: str, logdir: Path | str, timeout: float) -> str:
    """`url` once TensorBoard answers it with 200; the process is stopped on failure or interruption."""
    import httpx

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RoostError(
                    f"TensorBoard exited with code {proc.returncode}",
                    hint=f"run `tensorboard --logdir {logdir}` by hand to see why",
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    except BaseException:  # Ctrl-C/SIGTERM while waiting: the child runs in its own session, so stop it here
        stop(proc)
        raise
    stop(proc)
    raise RoostError(f"TensorBoard did not answer within {timeout:.0f} s", hint="run it by hand to see why")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a TensorBoard started by `start` (its process group)."""
    import os
    import signal

    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            proc.kill()


class _Attached:
    """A TensorBoard this process did not start (a training worker did): enough of Popen for `stop` and waiting."""

    def __init__(self, pid: int) -> None:
        import psutil  # type: ignore[import-untyped]  # psutil ships no type stubs (types-psutil not installed)

        self.pid = pid
        self._p = psutil.Process(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while running, else an exit code (0 when it was not ours to know)."""
        if self.returncode is None and not self._p.is_running():
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Block until it exits."""
        import psutil

        try:
            self._p.wait(timeout)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired as exc:
            raise subprocess.TimeoutExpired("tensorboard", timeout or 0) from exc
        self.returncode = 0
        return 0

    def kill(self) -> None:
        """SIGKILL."""
        import psutil

        try:
            self._p.kill()
        except psutil.NoSuchProcess:
            pass


def attach(pid: int) -> _Attached:
    """A handle on a TensorBoard started by another process of this user (e.g. rank 0 of `--nproc`)."""
    return _Attached(pid)
