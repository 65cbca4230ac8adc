"""`roost ui` stops cleanly on SIGTERM and Ctrl-C: exit 0, the port closed (a supervisor reads 143 as a crash)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_roost_ui_exits_0_on_sigterm_and_stops_listening(ws, sig):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env["ROOST_WORKSPACE"] = str(Path(ws.root))
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost", "ui", "--port", str(port)],
        cwd=ws.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # hang guard only (a loaded machine starts Python slowly)
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/experiments", timeout=10) as resp:
                    assert resp.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, "roost ui never answered"
                time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert not _listening(port), "the port still accepts connections after roost ui exited"
