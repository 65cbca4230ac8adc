"""`roost ui` under slow clients: header deadline, idle keep-alive, connection cap answered with 503."""

from __future__ import annotations

from slowkit import Process, check_slow_clients


def test_ui_cuts_slow_clients_and_answers_503_when_full(ws) -> None:
    srv = Process(["ui"], str(ws.root), "/", str(ws.root / "ui.log"))
    try:
        check_slow_clients(srv.port, "/")
    finally:
        srv.stop()
