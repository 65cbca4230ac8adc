"""gRPC over HTTP/2 for the ASGI front (grpc/asgi.py, grpc/asgi_stream.py): length-prefixed messages, their
compression, percent-encoded grpc-message, the call's metadata, and the answers that carry no message."""

from __future__ import annotations

import zlib
from base64 import b64decode
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from roost.netpolicy import token_ok
from roost.serve.grpc.proto import PACKAGE, SERVICE
from roost.serve.grpc.service import CODES

if TYPE_CHECKING:
    from roost.serve.app import ServeApp

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

OK, UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNIMPLEMENTED, EXHAUSTED, UNAUTHENTICATED = 0, 2, 4, 13, 12, 8, 16
DEADLINE = "Deadline Exceeded"  # grpcio's words
STATUS = {http: code.value[0] for http, code in CODES.items()}  # HTTP status of a request problem -> grpc-status
UNAUTH = "missing or wrong bearer token (metadata authorization: Bearer TOKEN)"
ACCEPT_ENCODING = b"identity, deflate, gzip"
WBITS = {b"gzip": 31, b"deflate": 15}  # zlib window bits: gzip wrapper, zlib wrapper (gRPC's "deflate")
PREFIX = f"/{PACKAGE}.{SERVICE}/"
HEADERS = [(b"content-type", b"application/grpc"), (b"grpc-accept-encoding", ACCEPT_ENCODING)]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS, "trailers": True}
_PLAIN = bytes(range(0x20, 0x7F)).replace(b"%", b"")


class Problem(Exception):
    """A call answered with a gRPC status before it reached the service (framing, encoding, size)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def percent(text: str) -> bytes:
    """grpc-message's percent-encoding: UTF-8, every byte outside 0x20-0x7E and '%' as %XX, and a space at either
    end too (HTTP/2 field values must not start or end with whitespace; a message cut at ", " ended with one)."""
    raw = text.encode()
    if raw.translate(None, _PLAIN):
        raw = b"".join(bytes([b]) if 0x20 <= b < 0x7F and b != 0x25 else b"%%%02X" % b for b in raw)
    if raw[:1] == b" ":
        raw = b"%20" + raw[1:]
    if raw[-1:] == b" ":
        raw = raw[:-1] + b"%20"
    return raw


_UNITS = {72: 3600.0, 77: 60.0, 83: 1.0, 109: 1e-3, 117: 1e-6, 110: 1e-9}  # H M S m u n (grpc-timeout's units)


def timeout_s(value: bytes) -> float:
    """The seconds of a grpc-timeout header: `TimeoutValue TimeoutUnit`, at most 8 ASCII digits and one of H M S m
    u n (PROTOCOL-HTTP2). Anything else is a Problem (INTERNAL, as grpcio answers a value it cannot parse; grpcio
    also takes 9 digits, the spec and grpc-go do not). 0 is a deadline already passed, as grpcio and grpc-go read it."""
    unit = _UNITS.get(value[-1]) if value else None
    digits = value[:-1]
    if unit is None or not 1 <= len(digits) <= 8 or not digits.isdigit():
        shown = value[:40].decode("latin-1")
        raise Problem(
            INTERNAL,
            f"Error parsing 'grpc-timeout' metadata: {shown!r} is not 1 to 8 digits and a unit (H, M, S, m, u or n)",
        )
    return int(digits) * unit


class Call:
    """The request's metadata and the answer's trailing metadata: what Servicer asks of a grpc.ServicerContext."""

    __slots__ = ("headers", "by_name", "trailing")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.by_name = dict(headers)  # (a repeated header: its last value, as grpcio's single-value reads)
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> list[tuple[str, str | bytes]]:
        """The request headers as gRPC metadata: str values, bytes (base64-decoded) for -bin keys."""
        out: list[tuple[str, str | bytes]] = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in self.headers if not k.endswith(b"-bin")
        ]
        for k, v in self.headers:
            if k.endswith(b"-bin"):
                try:
                    out.append((k.decode("latin-1"), b64decode(v + b"=" * (-len(v) % 4))))
                except ValueError:
                    continue
        return out

    def header(self, key: bytes) -> bytes | None:
        """The value of request header `key` (lower-case), or None."""
        return self.by_name.get(key)

    def set_trailing_metadata(self, md: tuple[tuple[str, str], ...]) -> None:
        """Trailing metadata to answer with (the request id)."""
        self.trailing = md


def messages(buf: bytes | bytearray, encoding: bytes | None, limit: int) -> tuple[list[bytes], int]:
    """The complete length-prefixed messages at the head of `buf` (decompressed) and how many bytes they took."""
    out, pos = [], 0
    while len(buf) - pos >= 5:
        flag, size = buf[pos], int.from_bytes(buf[pos + 1 : pos + 5], "big")
        if size > limit:
            raise Problem(EXHAUSTED, f"Received message larger than max ({size} vs. {limit})")
        if flag > 1:
            raise Problem(INTERNAL, f"the message's compressed-flag byte is {flag}; gRPC allows 0 or 1")
        if len(buf) - pos - 5 < size:
            break
        data = bytes(buf[pos + 5 : pos + 5 + size])
        pos += 5 + size
        if flag:
            data = _inflate(data, encoding, limit)
        out.append(data)
    return out, pos


def _inflate(data: bytes, encoding: bytes | None, limit: int) -> bytes:
    """A compressed message's bytes, at most `limit` of them."""
    if encoding is None or encoding == b"identity":
        raise Problem(INTERNAL, "Compression bit set but no encoding configured")
    wbits = WBITS.get(encoding)
    if wbits is None:  # (checked on the headers already; kept for safety)
        raise Problem(UNIMPLEMENTED, f"grpc-encoding {encoding[:40]!r} is not supported")
    z = zlib.decompressobj(wbits)
    try:
        out = z.decompress(data, limit + 1)
    except zlib.error:
        raise Problem(INTERNAL, "Decompression failed due to zlib error") from None
    if len(out) > limit:
        raise Problem(EXHAUSTED, f"Received message larger than max (over {limit} once decompressed vs. {limit})")
    return out


async def answer_status(send: Send, code: int, text: str) -> None:
    """Answer a call with no message and status `code`."""
    await send(START)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    trailers = [(b"grpc-status", b"%d" % code), (b"grpc-message", percent(text))]
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})


async def refuse(send: Send, http: int, code: int, text: str) -> None:
    """Answer a request that is not a gRPC call with an HTTP error (and the status a gRPC client can read)."""
    headers = [(b"content-type", b"text/plain"), (b"grpc-status", b"%d" % code), (b"grpc-message", percent(text))]
    await send({"type": "http.response.start", "status": http, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode(), "more_body": False})


def authorized(app: ServeApp, call: Call) -> bool:
    """Whether the call carries the server's token (or needs none)."""
    if app.auth is None or app.public_inference:
        return True
    return token_ok(call.header(b"authorization"), app.auth)
