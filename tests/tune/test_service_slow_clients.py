"""`roost tune serve` under slow clients: header deadline, idle keep-alive, connection cap answered with 503, counted on
/metrics (as roost serve's)."""

from __future__ import annotations

import httpx

from slowkit import Process, check_slow_clients


def test_tune_service_cuts_slow_clients_and_answers_503_when_full(ws) -> None:
    srv = Process(["tune", "serve"], str(ws.root), "/health", str(ws.root / "tune.log"))
    try:
        check_slow_clients(srv.port, "/health", metrics=lambda: httpx.get(srv.url + "/metrics", timeout=10).text)
    finally:
        srv.stop()
