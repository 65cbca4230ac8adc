"""`roost serve` under slow clients: header deadline, idle keep-alive, connection cap answered with 503, /metrics;
and its gRPC port: a slow HTTP/2 preface is cut, connections over the cap are closed at once."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from servekit import Server, free_port

from slowkit import CAP, HEADER_TIMEOUT, KEEPALIVE, SLACK_S, check_slow_clients, wait_closed


def test_serve_cuts_slow_clients_and_answers_503_when_full(pkgs: dict[str, Path], tmp_path: Path) -> None:
    limits = ["--header-timeout", str(HEADER_TIMEOUT), "--keepalive", str(KEEPALIVE), "--max-connections", str(CAP)]
    grpc_port = free_port()
    srv = Server(
        [str(pkgs["bc"])], "--replicas", "1", "--grpc-port", str(grpc_port), *limits, log=tmp_path / "server.log"
    )
    try:
        srv.wait_ready()
        check_slow_clients(
            srv.port, "/v2/health/ready", metrics=lambda: httpx.get(srv.url + "/metrics", timeout=10).text
        )
        socks = [socket.create_connection(("127.0.0.1", grpc_port), timeout=5) for _ in range(CAP + 1)]
        started = time.monotonic()
        try:
            for s in socks:
                s.sendall(b"PRI * HTTP/2.0\r\n")  # a third of the client preface, and no more
            closed = wait_closed(socks, HEADER_TIMEOUT + SLACK_S, start=started)
        finally:
            for s in socks:
                s.close()
        assert sorted(closed)[0] < 1.0, f"no connection over the cap was closed at once: {closed}"
        held = sorted(closed)[1:]  # cut by the handshake deadline or the idle one, whichever is first
        assert all(min(HEADER_TIMEOUT, KEEPALIVE) - 0.3 <= c <= HEADER_TIMEOUT + SLACK_S for c in held), (
            f"slow preface: {closed}"
        )
    finally:
        srv.stop()
