"""KServe V2 gRPC as an ASGI app: served on the worker's own event loop by uvicorn's HTTP/2 (grpc/h2.py).

gRPC is HTTP/2 (PROTOCOL-HTTP2): a POST to /inference.GRPCInferenceService/RPC, content-type application/grpc,
each message framed as a compressed flag byte, a 4-byte big-endian length and the protobuf bytes; the answer is
200 with the same framing and the status in the trailers (grpc-status, grpc-message percent-encoded). The RPCs are
the ones grpc/server.py serves on grpcio, through the same Servicer (grpc/service.py: the fast ModelInfer decode and
encode of grpc/fast.py, the model lookup, batcher, limits, request ids) and the same token check, status codes and
messages. Measured on the bare transports (bench/_grpc_echo.py vs bench/_grpc_h2_echo.py, no parse, no model, h2load
c=16, loaded machine) grpcio's thread-pool server costs 0.10-0.29 ms of CPU per call, this path 0.03-0.04 ms.

Framing errors follow grpcio's answers where the spec is silent (a compressed flag without grpc-encoding: INTERNAL;
no single request message: UNIMPLEMENTED; a message over the limit: RESOURCE_EXHAUSTED) and the spec where grpcio
is lenient: a content-type that is not application/grpc* is HTTP 415, a second message in a unary call is refused
(grpcio answers the first), an unknown grpc-encoding is UNIMPLEMENTED with grpc-accept-encoding; a request without
`te: trailers` (no place for the status) is HTTP 400 with the status in the headers (grpcio resets the stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from roost.serve.codec import HTTPError
from roost.serve.grpc.asgi_stream import stream
from roost.serve.grpc.frames import (
    DEADLINE,
    DEADLINE_EXCEEDED,
    EXHAUSTED,
    INTERNAL,
    OK,
    PREFIX,
    START,
    STATUS,
    UNAUTH,
    UNIMPLEMENTED,
    UNKNOWN,
    WBITS,
    Call,
    Problem,
    Receive,
    Scope,
    Send,
    answer_status,
    authorized,
    messages,
    percent,
    refuse,
    timeout_s,
)
from roost.serve.grpc.proto import RPCS, message
from roost.serve.grpc.service import PUBLIC_RPCS, Malformed, Servicer, clip, request_parser
from roost.serve.security import redact

if TYPE_CHECKING:
    from roost.serve.app import ServeApp

log = logging.getLogger(__name__)


class GrpcApp:
    """The ASGI app of `inference.GRPCInferenceService` over a ServeApp (see the module docstring)."""

    def __init__(self, app: ServeApp, max_message: int) -> None:
        self.app, self.limit = app, max_message
        self.svc = Servicer(app)
        self.parsers = {rpc: request_parser(req) for rpc, (req, _) in RPCS.items()}
        self.serializers = {rpc: message(resp).SerializeToString for rpc, (_, resp) in RPCS.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call = Call(scope["headers"])
        ct = call.header(b"content-type")
        if ct is None or not ct.startswith(b"application/grpc"):
            return await refuse(send, 415, INTERNAL, "content-type must be application/grpc (gRPC over HTTP/2)")
        if scope["method"] != "POST":
            return await refuse(send, 405, INTERNAL, "gRPC calls are POST requests")
        if call.header(b"te") != b"trailers":
            return await refuse(send, 400, INTERNAL, "the request needs the header te: trailers (gRPC's status)")
        path = scope["path"]
        rpc = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
        deadline = None
        wait = call.header(b"grpc-timeout")
        if wait is not None:  # (read first, as grpcio reads it with the headers)
            try:
                seconds = timeout_s(wait)
            except Problem as p:
                return await answer_status(send, p.code, p.text)
            if seconds <= 0:
                return await answer_status(send, DEADLINE_EXCEEDED, DEADLINE)
            deadline = asyncio.get_running_loop().time() + seconds
        encoding = call.header(b"grpc-encoding")
        if encoding is not None and encoding != b"identity" and encoding not in WBITS:
            # (the answer's headers carry grpc-accept-encoding, as every answer's do)
            text = f"grpc-encoding {encoding[:40].decode('latin-1')!r} is not supported; use identity, gzip or deflate"
            return await answer_status(send, UNIMPLEMENTED, text)
        if rpc == "ModelStreamInfer":
            return await stream(self.app, self.svc, self.limit, call, encoding, receive, send, deadline)
        if rpc not in RPCS:
            return await answer_status(send, UNIMPLEMENTED, f"Method not found: {path[:200]}")
        try:
            if deadline is None:
                body = await self._one(receive, encoding, rpc)
                reply, code, text = await self.unary(rpc, body, call)
            else:  # past the deadline the call is cancelled where it waits (a request queued on the batcher is dropped)
                async with asyncio.timeout_at(deadline):
                    body = await self._one(receive, encoding, rpc)
                    reply, code, text = await self.unary(rpc, body, call, deadline)
                if asyncio.get_running_loop().time() >= deadline:  # (a run inline on this thread cannot be cut)
                    raise TimeoutError
        except Problem as p:
            return await answer_status(send, p.code, p.text)
        except TimeoutError:
            return await answer_status(send, DEADLINE_EXCEEDED, DEADLINE)
        await send(START)
        framed = b"" if reply is None else b"\0" + len(reply).to_bytes(4, "big") + reply
        await send({"type": "http.response.body", "body": framed, "more_body": False})
        trailers = [(b"grpc-status", b"%d" % code)]
        if text:
            trailers.append((b"grpc-message", percent(text)))
        trailers.extend((k.encode(), v.encode()) for k, v in call.trailing)
        await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})

    async def _one(self, receive: Receive, encoding: bytes | None, rpc: str) -> bytes:
        """The one request message of a unary call."""
        msg = await receive()
        buf: bytes | bytearray = msg.get("body", b"")
        while True:
            if msg["type"] != "http.request":
                raise Problem(UNKNOWN, "the client went away")
            if len(buf) >= 5:
                size = int.from_bytes(buf[1:5], "big")
                if size > self.limit:
                    raise Problem(EXHAUSTED, f"Received message larger than max ({size} vs. {self.limit})")
            if not msg.get("more_body"):
                break
            msg = await receive()
            if buf.__class__ is bytes:
                buf = bytearray(buf)  # (a large message comes in many parts: grown in place)
            buf += msg.get("body", b"")
        got, used = messages(buf, encoding, self.limit)
        if len(got) != 1 or used != len(buf):
            why = "more than one message" if len(got) > 1 else "no complete message"
            if used != len(buf):
                why += f" (it ends {len(buf) - used} bytes into a message)"
            raise Problem(UNIMPLEMENTED, f"{rpc} requires exactly one request message; the body has {why}")
        return got[0]

    async def unary(
        self, rpc: str, body: bytes, call: Call, deadline: float | None = None
    ) -> tuple[bytes | None, int, str]:
        """(serialized reply or None, grpc-status, grpc-message) of one unary RPC: token, metrics, errors as
        grpc/server.py's handler answers them; cancelled at `deadline` (event loop time) it counts a 504."""
        app = self.app
        t0 = time.perf_counter()
        status, code, text, reply = 200, OK, "", None
        infer = rpc == "ModelInfer"
        req = self.parsers[rpc](body)
        malformed = req.__class__ is Malformed
        model = req.model_name if infer and not malformed else ""
        metrics = app.metrics
        if metrics is not None:
            metrics.enter()
        if infer:
            app.grpc_calls += 1
        try:
            if rpc not in PUBLIC_RPCS and not self.authorized(call):
                raise HTTPError(401, UNAUTH)
            if malformed:  # after the token check: an anonymous caller learns nothing more than UNAUTHENTICATED
                raise req.error()
            if infer:
                reply = await self.svc.ModelInfer(req, call)
            else:
                reply = self.serializers[rpc](await getattr(self.svc, rpc)(req))
        except HTTPError as exc:
            status, code, text = exc.status, STATUS.get(exc.status, UNKNOWN), clip(redact(exc.message))
        except Exception as exc:
            log.exception("internal error in gRPC %s", rpc)
            status, code, text = 500, INTERNAL, f"internal error ({type(exc).__name__})"
        except asyncio.CancelledError:  # the deadline passed (504), or the client went away (499)
            status = 504 if deadline is not None and asyncio.get_running_loop().time() >= deadline else 499
            raise
        finally:
            if infer:
                app.grpc_calls -= 1
            if metrics is not None:
                metrics.leave()
                if infer:
                    known = app.repo.get(model) is not None
                    metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
        return reply, code, text

    def authorized(self, call: Call) -> bool:
        """Whether the call carries the server's token (or needs none)."""
        return authorized(self.app, call)
