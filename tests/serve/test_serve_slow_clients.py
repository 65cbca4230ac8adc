"""`roost serve` under slow clients: header deadline, idle keep-alive, connection cap answered with 503, /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
from servekit import Server

from slowkit import CAP, HEADER_TIMEOUT, KEEPALIVE, check_slow_clients


def test_serve_cuts_slow_clients_and_answers_503_when_full(pkgs: dict[str, Path], tmp_path: Path) -> None:
    limits = ["--header-timeout", str(HEADER_TIMEOUT), "--keepalive", str(KEEPALIVE), "--max-connections", str(CAP)]
    srv = Server([str(pkgs["bc"])], "--replicas", "1", *limits, log=tmp_path / "server.log")
    try:
        srv.wait_ready()
        check_slow_clients(
            srv.port, "/v2/health/ready", metrics=lambda: httpx.get(srv.url + "/metrics", timeout=10).text
        )
    finally:
        srv.stop()
