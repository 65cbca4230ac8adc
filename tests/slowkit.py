"""Slow-client checks shared by every server's test (imported by name: tests/conftest.py puts tests/ on sys.path).

`check_slow_clients` runs one loopback scenario against a server started with lowered limits (header deadline,
keep-alive, connection cap): slow header lines hold `cap` connections, a new request must get an HTTP 503 with a
body (not a reset or an empty reply), the slow connections must be cut once the header deadline passes, idle
keep-alive connections must be closed, and afterwards the server must answer normally again.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable

import httpx

SLACK_S = 2.5  # scheduling slack on a loaded 2-core machine (the deadlines under test are 1-2 s)
LIMIT_ENV = {"ROOST_HTTP_HEADER_TIMEOUT": "2", "ROOST_HTTP_KEEPALIVE": "1", "ROOST_HTTP_MAX_CONNECTIONS": "4"}
HEADER_TIMEOUT, KEEPALIVE, CAP = 2.0, 1.0, 4


def _closed(sock: socket.socket) -> bool:
    """True once the peer closed `sock` (EOF or reset); reads and drops anything it sent before (a 408)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def wait_closed(socks: list[socket.socket], within: float, trickle: bytes = b"", start: float = 0.0) -> list[float]:
    """Seconds from `start` (default: now) until the server closed each socket (inf if not within `within` of
    `start`); sends `trickle` to each still-open socket every 0.5 s (a slow client's next header line)."""
    start = start or time.monotonic()
    closed_at = [float("inf")] * len(socks)
    next_send = start + 0.5
    while time.monotonic() - start < within and any(t == float("inf") for t in closed_at):
        now = time.monotonic()
        for i, s in enumerate(socks):
            if closed_at[i] == float("inf") and _closed(s):
                closed_at[i] = now - start
        if trickle and now >= next_send:
            for i, s in enumerate(socks):
                if closed_at[i] == float("inf"):
                    try:
                        s.send(trickle)
                    except OSError:
                        closed_at[i] = now - start
            next_send = now + 0.5
        time.sleep(0.05)
    return closed_at


def check_slow_clients(
    port: int,
    path: str,
    ok_status: int = 200,
    metrics: Callable[[], str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Run the scenario against a server on 127.0.0.1:`port` started with LIMIT_ENV's limits (or the same flags)."""
    host = f"127.0.0.1:{port}"
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    url = f"http://{host}{path}"
    slow = []
    for _ in range(CAP):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}".encode())  # the end of headers never comes
        slow.append(s)
    started = time.monotonic()
    try:
        time.sleep(0.3)  # the server has accepted them
        # the cap is reached: a complete request gets a 503 with a body, not a reset or an empty reply
        r = httpx.get(url, headers=headers, timeout=10)
        assert r.status_code == 503, (r.status_code, r.text[:200])
        assert "connection" in r.text.lower(), r.text
        # the slow clients keep sending a header line every 0.5 s; the header deadline cuts them anyway
        cut = wait_closed(slow, HEADER_TIMEOUT + SLACK_S, trickle=b"X-Slow: 1\r\n", start=started)
        assert all(c != float("inf") for c in cut), f"slow header lines not cut: closed after {cut} s"
        assert all(c >= HEADER_TIMEOUT - 0.3 for c in cut), f"cut before the {HEADER_TIMEOUT} s deadline: {cut}"
    finally:
        for s in slow:
            s.close()
    # idle connections: one that never sends a byte, one kept alive after a complete request
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == ok_status, resp.status
        assert conn.sock is not None, "the server closed a keep-alive connection right after the response"
        idle = wait_closed([silent, conn.sock], KEEPALIVE + SLACK_S)
        assert all(c != float("inf") for c in idle), f"idle connections left open: {idle} s"
    finally:
        silent.close()
        conn.close()
    # the slow clients are gone: the server answers normally again
    with httpx.Client(timeout=10, headers=headers) as c:
        for _ in range(CAP + 2):
            assert c.get(url).status_code == ok_status
    if metrics is not None:
        text = metrics()
        assert _sample(text, "roost_connections_rejected_total") >= 1, text
        assert _sample(text, "roost_requests_timed_out_total") >= CAP, text
        assert _sample(text, "roost_connections_open") >= 1, text  # at least the scrape's own connection


def _sample(text: str, name: str) -> float:
    """The sum of every sample of metric `name` (all label sets) in a Prometheus text exposition."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    assert seen, f"{name} is not on /metrics"
    return total


class Process:
    """A roost server command on a free loopback port, in its own session, with the lowered limits in its env."""

    def __init__(self, args: list[str], cwd: str, ready_path: str, log: str, headers: dict | None = None) -> None:
        import os
        import subprocess
        import sys

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        env.update(LIMIT_ENV, ROOST_WORKSPACE=cwd)
        self._log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roost.cli.main", *args, "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, open(log).read()[-2000:]
            try:
                if httpx.get(self.url + ready_path, headers=headers, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"{args[0]} did not answer {ready_path}: {open(log).read()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        import os
        import signal
        import subprocess

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
