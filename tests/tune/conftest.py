"""Fixtures of the tune tests: `roost tune serve` as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`roost tune serve` in its own process group."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root, self.port = root, port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        env["ROOST_WORKSPACE"] = str(self.root)
        log = open(self.root / f"serve-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roost.cli.main", "tune", "serve", "--port", str(self.port)],
            cwd=self.root,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.root / f"serve-{self.port}.log").read_text()
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the tuning service did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture
def servers(ws):
    started: list[Server] = []

    def make(port: int | None = None) -> Server:
        s = Server(ws.root, port).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.kill()
