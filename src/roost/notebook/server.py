"""`roost notebook`: start JupyterLab on loopback with a token, the roost kernel and the workspace configured."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from roost.errors import RoostError
from roost.notebook.kernel import KERNEL_NAME, RUN_ID_ENV, kernel_env, write_kernelspec
from roost.notebook.lab import PARENT_ENV

log = logging.getLogger(__name__)

DEFAULT_PORT = 8888
HOST = "127.0.0.1"


def port_free(port: int, host: str = HOST) -> bool:
    """True when `host:port` can be bound now (as the server would, with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A port the OS reports free right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def choose_port(port: int | None) -> int:
    """`port` when free; else (or when None: 8888 if free) a free port, with a warning if one was asked for."""
    if port is not None and not 0 < port < 65536:
        raise RoostError(f"port {port} is out of range", hint="use a port between 1 and 65535, or leave --port out")
    want = DEFAULT_PORT if port is None else port
    if port_free(want):
        return want
    got = free_port()
    if port is not None:
        log.warning("port %d is in use; JupyterLab will listen on %d instead", port, got)
    return got


@dataclass
class NotebookServer:
    """A running JupyterLab: its URL (with token), token, process and log file."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    log_path: Path
    requested_port: int | None = None
    ready_s: float | None = None
    _t0: float = field(default=0.0, repr=False)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT/ (no token)."""
        return f"http://{HOST}:{self.port}/"

    @property
    def status_url(self) -> str:
        """The status endpoint with the token; answers 200 once the server is up."""
        return f"{self.base_url}api/status?token={self.token}"

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until the server answers with 200; returns the seconds since launch."""
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise RoostError(
                    f"JupyterLab exited with code {code} before answering: {self._last_log_line()}",
                    hint=f"see the full log in {self.log_path}",
                )
            try:
                with opener.open(self.status_url, timeout=2) as resp:
                    if resp.status == 200:
                        return time.monotonic() - self._t0
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RoostError(
                    f"JupyterLab did not answer on port {self.port} within {timeout:.0f} s",
                    hint=f"see the log in {self.log_path}",
                )
            time.sleep(0.05)

    def check_token(self) -> None:
        """Stop the server and raise unless it refuses a request without the token (a Jupyter config that sets
        an empty token or password-less access would leave it open to every local user and web page)."""
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.base_url}api/contents", timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            raise RoostError(f"JupyterLab stopped answering: {exc}", hint=f"see the log in {self.log_path}") from None
        if status not in (401, 403):
            self.stop()
            raise RoostError(
                f"JupyterLab answered a request without its token (HTTP {status}): a Jupyter config disables it",
                hint="remove token/password settings such as c.IdentityProvider.token = '' from your "
                "jupyter_server_config.py (see `jupyter --paths`)",
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its kernels (the whole process group)."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> NotebookServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _last_log_line(self) -> str:
        try:
            lines = [ln.strip() for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        errors = [ln for ln in lines if ln.startswith(("[E", "[C")) or "Error" in ln]
        return (errors or lines or ["(empty log)"])[-1][:300]


def _command(port: int, root: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "roost.notebook.lab",
        "--no-browser",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        # docs/security.md: whatever the user's Jupyter config says, loopback Host names only, Jupyter's XSRF
        # check on, no cross-origin access (the token itself comes by environment, not in `ps`)
        "--ServerApp.allow_remote_access=False",
        "--ServerApp.disable_check_xsrf=False",
        "--ServerApp.allow_origin=",
        "--ServerApp.allow_origin_pat=",
        "--ServerApp.allow_credentials=False",
        f"--ServerApp.root_dir={root}",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses to start as root without it
    return cmd


def launch(
    port: int | None = None, directory: str | Path | None = None, wait: bool = True, timeout: float = 60.0
) -> NotebookServer:
    """Start JupyterLab on 127.0.0.1 with a fresh token and the roost kernel (it stops when this process exits)."""
    from roost import workspace

    ws = workspace.current()
    root = Path(directory or Path.cwd()).expanduser().resolve()
    if not root.is_dir():
        raise RoostError(f"notebook folder {root} does not exist", hint="pass an existing folder with --dir")
    jdir = write_kernelspec(ws)
    token = secrets.token_hex(24)
    env = {
        **os.environ,
        **kernel_env(ws),
        "JUPYTER_TOKEN": token,  # token via env: not visible in `ps`
        PARENT_ENV: str(os.getpid()),  # the server stops when this process is gone
        "JUPYTER_PATH": os.pathsep.join(p for p in (str(jdir), os.environ.get("JUPYTER_PATH", "")) if p),
    }
    env.pop(RUN_ID_ENV, None)
    for attempt in range(3):
        chosen = choose_port(port)
        log_path = jdir / f"lab-{chosen}.log"
        t0 = time.monotonic()
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(
                _command(chosen, root),
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        srv = NotebookServer(
            url=f"http://{HOST}:{chosen}/lab?token={token}",
            token=token,
            process=proc,
            port=chosen,
            directory=root,
            log_path=log_path,
            requested_port=port,
        )
        srv._t0 = t0
        if not wait:
            return srv
        try:
            srv.ready_s = srv.wait_ready(timeout)
            srv.check_token()
            return srv
        except RoostError:
            srv.stop()
            raced = "already in use" in log_path.read_text(errors="replace")
            if not raced or attempt == 2:
                raise
            log.warning("port %d was taken while JupyterLab started; retrying on another port", chosen)
    raise AssertionError("unreachable")
