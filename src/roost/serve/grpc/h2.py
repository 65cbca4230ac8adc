"""The ASGI gRPC front's transport: uvicorn's HTTP/2 protocol (zttp, prior-knowledge h2c) serving grpc/asgi.py on
the worker's own event loop, on a socket each worker binds with SO_REUSEPORT (as grpcio's front does).

The connection limits apply as on grpcio's front: a connection must finish its HTTP/2 preface (through its SETTINGS)
within header_timeout_s, is closed (GOAWAY) after keepalive_s with no call in progress, and over max_connections
new connections are closed at once (gRPC has no place for a 503 before HTTP/2 starts; clients see UNAVAILABLE).
zttp 0.0.35 ends a connection with ENHANCE_YOUR_CALM at its 4,096th stream (its flood guard counts every stream
ever opened); a graceful GOAWAY after STREAM_CAP streams moves clients to a new connection before that happens.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.zttp_h2_impl import ZttpH2Protocol
from zttp import Settings

from roost.errors import RoostError
from roost.netpolicy.limits import ConnLimits

if TYPE_CHECKING:
    import zttp
    from uvicorn.server import ServerState

    from roost.serve.app import ServeApp

log = logging.getLogger(__name__)

STREAM_CAP = 4000  # streams per connection before a graceful GOAWAY (zttp refuses the 4,096th)
CORK = True  # gather a turn's writes per connection (Corked)


class Corked:
    """The connection's transport with its writes gathered until the event loop's next turn: a gRPC answer is three
    sends (headers, message, trailers), each written at once by uvicorn, so three syscalls (and three wake-ups of
    the client) per call; corked, every frame a turn of the loop produces for the connection goes in one write."""

    __slots__ = ("transport", "loop", "parts")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport, self.loop = transport, loop
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queue `data`; the first write of a turn schedules the flush."""
        if not data:
            return
        if not self.parts:
            self.loop.call_soon(self.flush)
        self.parts.append(data)

    def flush(self) -> None:
        """Write what was queued, as one buffer."""
        if self.parts:
            data = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
            self.parts.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        """Whether the transport is closing."""
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class GrpcH2Protocol(ZttpH2Protocol):
    """uvicorn's HTTP/2 protocol with the handshake timeout, the connection cap and the stream cap."""

    def __init__(self, *args: Any, limits: ConnLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.streams = 0
        self.handshake: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            transport.close()
            return
        super().connection_made(transport)
        if CORK:
            self.transport = Corked(transport, self.loop)  # type: ignore[assignment]  # (writes and closes, as one)
        self.handshake = self.loop.call_later(self.limits.header_timeout_s, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handshake is not None:
            self.handshake.cancel()
            self.handshake = None
        super().connection_lost(exc)

    def events(self) -> Generator[zttp.Event]:
        """zttp's events; the client's SETTINGS (the end of its preface) ends the handshake deadline."""
        for event in super().events():
            if self.handshake is not None and event.__class__ is Settings:
                self.handshake.cancel()
                self.handshake = None
            yield event

    def handle_request(self, event: zttp.Request) -> None:
        super().handle_request(event)
        self.streams += 1
        if self.streams == STREAM_CAP and not self.shutdown_requested:
            self.conn.close(0, event.stream_id)  # NO_ERROR: streams after this one go to a new connection
            self.flush()
            self.shutdown_requested = True  # closed once this connection's last call is answered


class H2Server:
    """A started ASGI gRPC front of one worker; `await stop(grace)` drains it."""

    def __init__(self, server: asyncio.AbstractServer, state: ServerState) -> None:
        self.server, self.state = server, state

    async def stop(self, grace: float | None) -> None:
        """Refuse new connections, GOAWAY the open ones, let calls in progress finish for up to `grace` seconds."""
        self.server.close()
        for conn in list(self.state.connections):
            conn.shutdown()
        deadline = time.monotonic() + (grace or 0.0)
        while self.state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self.state.tasks):
            task.cancel()
        for conn in list(self.state.connections):
            conn.transport.close()


async def start(app: ServeApp, host: str, port: int, max_message: int, limits: ConnLimits) -> H2Server:
    """Serve `app`'s KServe V2 gRPC on host:port through uvicorn's HTTP/2 (SO_REUSEPORT: every worker binds it)."""
    from roost.serve.grpc.asgi import GrpcApp

    return await serve(GrpcApp(app, max_message), host, port, limits)


async def serve(asgi: Any, host: str, port: int, limits: ConnLimits) -> H2Server:
    """Serve the ASGI app `asgi` on host:port over uvicorn's HTTP/2 with this front's transport (GrpcH2Protocol);
    also the bare echo of bench/_grpc_h2_echo.py."""
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(
        asgi,
        http="zttp",
        http2=True,
        ws="none",
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=max(1, math.ceil(limits.keepalive_s)),
    )
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()

    def protocol() -> GrpcH2Protocol:
        return GrpcH2Protocol(config=config, server_state=state, app_state={}, _loop=loop, limits=limits)

    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        server = await loop.create_server(protocol, host, port, reuse_port=True, backlog=2048)
    except OSError as exc:
        why = "the port is taken" if exc.errno == 98 else str(exc)
        raise RoostError(f"cannot serve gRPC on {addr}: {why}", hint="pick another --grpc-port") from None
    return H2Server(server, state)
