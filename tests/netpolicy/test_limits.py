"""roost.netpolicy.limits on its own: the body deadline, the settings' errors, the descriptor budget."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from roost.errors import RoostError
from roost.netpolicy.limits import ConnLimits, ConnStats, budget, uvicorn_options


def _server(limits: ConnLimits, stats: ConnStats):
    """A uvicorn server on a free loopback port whose app reads the whole body, in a thread."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/", echo, methods=["POST"])])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(limits, "test", stats))
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return server, t, port


def test_a_body_that_stops_arriving_is_cut_with_408_and_a_steady_one_is_not() -> None:
    stats = ConnStats()
    server, thread, port = _server(ConnLimits(header_timeout_s=5, body_timeout_s=1, keepalive_s=5), stats)
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10)
        t0 = time.monotonic()
        reply = b""
        while chunk := slow.recv(4096):
            reply += chunk
        waited = time.monotonic() - t0
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        assert 0.7 <= waited <= 4.0, waited
        assert stats.timed_out["body"] == 1
        # 40 KB in 2 s, 2 KB every 0.1 s: past the 1 s allowance, but above 16 KiB/s it keeps going
        ok = socket.create_connection(("127.0.0.1", port), timeout=10)
        ok.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\nConnection: close\r\n\r\n")
        for _ in range(20):
            ok.sendall(b"b" * 2000)
            time.sleep(0.1)
        reply = b""
        while chunk := ok.recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"40000"), reply
        assert stats.timed_out["body"] == 1
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ROOST_HTTP_HEADER_TIMEOUT": "soon"}, "ROOST_HTTP_HEADER_TIMEOUT"),
        ({"ROOST_HTTP_MAX_CONNECTIONS": "1.5"}, "ROOST_HTTP_MAX_CONNECTIONS"),
        ({"ROOST_HTTP_KEEPALIVE": "0"}, "--keepalive / ROOST_HTTP_KEEPALIVE"),
        ({"ROOST_HTTP_BODY_TIMEOUT": "inf"}, "--body-timeout / ROOST_HTTP_BODY_TIMEOUT"),
        ({"ROOST_HTTP_BODY_TIMEOUT": "nan"}, "--body-timeout / ROOST_HTTP_BODY_TIMEOUT"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], names: str) -> None:
    with pytest.raises(RoostError, match=names.replace("/", "/")):
        ConnLimits.from_env(env)


def test_settings_from_env_and_overrides() -> None:
    lim = ConnLimits.from_env({"ROOST_HTTP_HEADER_TIMEOUT": "3", "ROOST_HTTP_MAX_CONNECTIONS": "7"}, keepalive_s=2.5)
    assert (lim.header_timeout_s, lim.max_connections, lim.keepalive_s) == (3.0, 7, 2.5)
    assert ConnLimits.from_env({}) == ConnLimits()


def test_the_cap_stays_below_the_descriptor_limit() -> None:
    served, rejecting = budget(ConnLimits(max_connections=100_000), 1024)
    assert served + rejecting <= 1024 - 64 and served >= 8 and rejecting >= 8
    assert budget(ConnLimits(max_connections=50), 1 << 20)[0] == 50
