"""`roost tensorboard RUN` stopped by SIGTERM/SIGHUP (a test, `timeout`, a closed terminal) stops its TensorBoard.

Before, only Ctrl-C did: a SIGTERM left the TensorBoard server (its own session) running forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest


def _listening_on(port: str) -> list[int]:
    """Pids whose command line has `--port PORT` (the TensorBoard started for the test)."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and f"--port\x00{port}\x00".encode() in (p / "cmdline").read_bytes() + b"\x00":
                out.append(int(p.name))
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_the_tensorboard_server(ws: Any, sig: signal.Signals) -> None:
    import roost

    with roost.start_run(experiment="tb") as run:
        run.log_metric("loss", 1.0)
    (Path(run.artifact_dir) / "tensorboard").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "tensorboard", run.id[:8]],
        cwd=ws.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""  # printed once TensorBoard answers
        assert url.startswith("http://"), proc.stderr.read() if proc.stderr else ""
        port = str(urlsplit(url).port)
        pids = _listening_on(port)
        assert pids, "the TensorBoard process"
        proc.send_signal(sig)
        proc.wait(timeout=120)
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = {p: Path(f"/proc/{p}/status").read_text().splitlines()[:7] for p in pids if _alive(p)}
        assert not left, f"TensorBoard {left} survived {sig.name}; roost said {proc.communicate()}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in pids:  # never leave the server behind, even when the test fails
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_as_soon_as_tensorboard_answers_is_a_clean_stop(ws: Any) -> None:
    """Whoever sees TensorBoard answer may stop roost before it prints the URL (a docs quick start's `curl --retry`
    then `kill` did): exit 0 and no TensorBoard left. Before, the stop landed in start()'s readiness poll: exit 130
    and the server, in its own session, ran on."""
    import socket

    import httpx

    import roost

    with roost.start_run(experiment="tb") as run:
        run.log_metric("loss", 1.0)
    (Path(run.artifact_dir) / "tensorboard").mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "tensorboard", run.id[:8], "--port", port],
        cwd=ws.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # poll much faster than roost's own 0.25 s readiness poll
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.005)
        pids = _listening_on(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        end = time.monotonic() + 60
        while any(_alive(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.5)
        assert not [p for p in pids if _alive(p)], "TensorBoard survived a SIGTERM sent while roost was starting it"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
