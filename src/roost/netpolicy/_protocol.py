"""The uvicorn protocols behind roost.netpolicy.limits: httptools' HTTP/1.1 protocol with one lazily re-armed deadline
timer per connection, and the small protocol that answers an over-cap connection with 503."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from roost.netpolicy.limits import ConnLimits, ConnStats

log = logging.getLogger("roost.netpolicy.limits")
EARLY_S = 0.001  # a timer may fire this much before its time
BODY_MIN_RATE = 16 << 10  # bytes/s a body must average beyond its body_timeout_s allowance
REJECT_WAIT_S = 2.0  # an over-cap connection gets its 503 when its headers end, or after this long
LINGER_S = 1.0  # after the 503, input is read and dropped this long (so the client reads it, not a reset)
MAX_REQUEST_HEAD = 16 << 10  # an over-cap connection's bytes looked at for the end of headers
IDLE, HEADERS, BODY, BUSY = 0, 1, 2, 3


class Rejecter(asyncio.Protocol):
    """An over-cap connection: reads its request head, answers 503, drops what follows for LINGER_S, closes."""

    def __init__(self, stats: ConnStats, response: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.stats, self.response, self.loop = stats, response, loop
        self.head = b""
        self.answered = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's TCP transport does not subclass it
        self.stats.rejecting += 1
        self.timer = self.loop.call_later(REJECT_WAIT_S, self.answer)

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return
        self.head += data
        if b"\r\n\r\n" in self.head or len(self.head) > MAX_REQUEST_HEAD:
            self.answer()

    def eof_received(self) -> bool:
        self.answer()
        return False  # the transport closes once the answer is written

    def answer(self) -> None:
        """Write the 503, half-close, and close after LINGER_S (or when the client closes)."""
        if self.answered or self.transport is None or self.transport.is_closing():
            return
        self.answered = True
        if self.timer is not None:
            self.timer.cancel()
        self.transport.write(self.response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.timer = self.loop.call_later(LINGER_S, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.stats.rejecting -= 1


def limited_protocol(
    limits: ConnLimits, stats: ConnStats, name: str, served: int, rejecting: int
) -> type[asyncio.Protocol]:
    """httptools' uvicorn protocol with `limits` applied; at most `served` connections, `rejecting` answered 503."""
    keepalive, header_s, body_s = limits.keepalive_s, limits.header_timeout_s, limits.body_timeout_s
    full = unavailable_response(name, served)
    late_head = request_timeout_response(f"{name}: the request headers did not arrive within {header_s:g} s")
    late_body = request_timeout_response(f"{name}: the request body did not arrive in time ({body_s:g} s + 1 s/16 KiB)")

    class Limited(HttpToolsProtocol):
        """One connection: uvicorn's HTTP/1.1 protocol plus the deadline of its current phase."""

        _phase = IDLE
        _since = 0.0  # loop time the phase began
        _body_bytes = 0
        _seen: object = None  # the scope of the last request whose headers were complete
        _timer: asyncio.TimerHandle | None = None
        _counted = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
            if len(self.connections) >= served:
                if stats.rejecting >= rejecting:
                    stats.reject("fd")
                    transport.abort()
                    return
                stats.reject("cap")
                rej = Rejecter(stats, full, self.loop)
                transport.set_protocol(rej)
                rej.connection_made(transport)
                return
            super().connection_made(transport)
            stats.opened()
            self._counted = True
            self._since = self.loop.time()
            self._timer = self.loop.call_at(self._since + keepalive, self._tick)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._counted:
                self._counted = False
                stats.closed()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            phase = self._phase
            if phase == IDLE:  # the first bytes of a request
                self._headers_from(self.loop.time(), self.scope)
            elif phase == BODY:
                self._body_bytes += len(data)
            super().data_received(data)
            phase = self._phase
            if phase == HEADERS:
                cycle = self.cycle
                if cycle is not None and cycle.scope is self.scope and self.scope is not self._seen:
                    self._seen = self.scope  # its headers are complete
                    if cycle.more_body and not cycle.response_complete:
                        self._phase, self._since, self._body_bytes = BODY, self.loop.time(), 0
                        self._wake_by(self._since + body_s)
                    else:
                        self._phase = BUSY
            elif phase == BODY and not self.cycle.more_body:
                self._phase = BUSY

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if self.scope is not cycle.scope:  # the next request's head is arriving
                self._headers_from(self.loop.time(), cycle.scope)
            elif cycle.response_complete:
                self._phase, self._since = IDLE, self.loop.time()
            else:  # a pipelined request is running
                self._phase = BUSY

        def _headers_from(self, now: float, seen: object) -> None:
            """Start the header deadline of a new request at `now` (`seen`: the last complete request's scope)."""
            self._phase, self._since, self._seen = HEADERS, now, seen
            self._wake_by(now + header_s)

        def _wake_by(self, due: float) -> None:
            """Make the timer fire no later than `due` (it is re-armed lazily, so it may be set later)."""
            timer = self._timer
            if timer is not None and timer.when() > due:
                timer.cancel()
                self._timer = self.loop.call_at(due, self._tick)

        def _tick(self) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            now = self.loop.time()
            phase = self._phase
            if phase == IDLE:
                due = self._since + keepalive
            elif phase == HEADERS:
                due = self._since + header_s
            elif phase == BODY:
                due = self._since + body_s + self._body_bytes / BODY_MIN_RATE
            else:  # a request is being answered: no deadline here, look again later
                due = now + keepalive
            if phase != BUSY and now >= due - EARLY_S:
                self._expire(phase)
            else:
                self._timer = self.loop.call_at(due, self._tick)

        def _expire(self, phase: int) -> None:
            """Close the connection whose `phase` ran past its deadline (a 408 first if a request was arriving)."""
            if phase == IDLE:
                stats.idle()
            else:
                stats.timeout("header" if phase == HEADERS else "body")
                log.debug("%s: cut a request from %s: too slow (%s)", name, self.client, phase)
                cycle = self.cycle
                if phase == HEADERS:
                    self.transport.write(late_head)
                elif cycle is not None and not cycle.response_started:
                    self.transport.write(late_body)
            self.transport.close()

    return Limited


def request_timeout_response(what: str) -> bytes:
    """A complete HTTP/1.1 408 response (connection: close) saying `what` did not arrive in time."""
    return _plain(408, "Request Timeout", what)


def unavailable_response(name: str, cap: int) -> bytes:
    """A complete HTTP/1.1 503 response (connection: close, retry-after) for a server at its connection cap."""
    msg = f"{name}: too many open connections (at most {cap} per process); retry shortly"
    return _plain(503, "Service Unavailable", msg, b"retry-after: 1\r\n")


def _plain(status: int, reason: str, msg: str, extra: bytes = b"") -> bytes:
    body = (msg + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body
