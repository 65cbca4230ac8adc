"""`roost ui` under slow clients: header deadline, idle keep-alive, connection cap answered with 503, counted on
/metrics (as roost serve's)."""

from __future__ import annotations

import httpx

from slowkit import Process, check_slow_clients


def test_ui_cuts_slow_clients_and_answers_503_when_full(ws) -> None:
    srv = Process(["ui"], str(ws.root), "/", str(ws.root / "ui.log"))
    try:
        check_slow_clients(srv.port, "/", metrics=lambda: httpx.get(srv.url + "/metrics", timeout=10).text)
    finally:
        srv.stop()
