"""A real `ray start --head` on free loopback ports for the Ray tests (tune's Ray backend, predict on Ray Data).

`ray start` daemonises gcs_server/raylet/workers into its own session: killing that process group stops exactly this
head (`ray stop --force` would stop every Ray process on the machine, other users' included)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ATTEMPTS = 3


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def head_env() -> dict[str, str]:
    """The environment for the head and its drivers: no ROOST_/RAY_ settings of the caller, auth off on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "RAY_"))}
    env["RAY_AUTH_MODE"] = "disabled"  # a loopback test head: drivers connect without a token
    # no Python workers forked before the raylet registers: on 2 loaded cores those forks delayed the registration
    # past Ray's fixed 30 s start deadline (CI: "The current node timed out during startup", twice); tasks start them
    env["RAY_enable_worker_prestart"] = "0"
    return env


def stop_group(pgid: int, grace_s: float = 5.0) -> None:
    """TERM the head's process group, KILL what is left after `grace_s` (no wait once it is gone)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start_once(ray_bin: Path, env: dict[str, str], tmp: str, port: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [str(ray_bin), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    cmd += ["--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", tmp]
    for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port", "--metrics-export-port"):
        cmd += [flag, str(free_port())]
    cmd += ["--min-worker-port", "0", "--max-worker-port", "0"]
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        out = "ray start timed out after 180 s"
    return p, out


@contextmanager
def ray_head(prefix: str = "rr") -> Iterator[str]:
    """Yield 'host:port' of a started 2-CPU head, stopped (and its temp dir removed) afterwards.

    Ray gives its own processes a fixed 30 s to come up; on a loaded machine (the parallel suite on 2 cores) that can
    pass, so a timed-out start is retried on fresh ports, up to ATTEMPTS tries; any other failure fails the test."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip(f"no ray CLI next to {sys.executable}")
    env = head_env()
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # drivers in this process (the CLI under test) connect without a token
    try:
        for attempt in range(1, ATTEMPTS + 1):
            tmp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")  # short: Ray's unix socket paths must stay < 108 chars
            port = free_port()
            p, out = _start_once(ray_bin, env, tmp, port)
            if p.returncode == 0:
                try:
                    yield f"127.0.0.1:{port}"
                finally:
                    stop_group(p.pid)
                    shutil.rmtree(tmp, ignore_errors=True)
                return
            stop_group(p.pid)
            shutil.rmtree(tmp, ignore_errors=True)
            if attempt == ATTEMPTS or "timed out" not in out.lower() and "timeout" not in out.lower():
                pytest.fail(f"ray start failed ({p.returncode}, attempt {attempt}):\n{out[-3000:]}")
    finally:
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth
