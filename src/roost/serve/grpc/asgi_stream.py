"""ModelStreamInfer on the ASGI front (grpc/asgi.py): each message of the request stream is a ModelInfer answered
in order with a ModelStreamInferResponse as soon as it is decoded; a request problem is that response's
error_message (Triton's behaviour, as grpc/server.py answers it) and the stream goes on. The token is checked once.
A grpc-timeout bounds the whole call: at its deadline the message being answered is cancelled (dropped from the
batcher's queue) and the stream ends with DEADLINE_EXCEEDED."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from roost.serve.codec import HTTPError
from roost.serve.grpc.fast import field
from roost.serve.grpc.frames import (
    DEADLINE,
    DEADLINE_EXCEEDED,
    INTERNAL,
    OK,
    START,
    UNAUTH,
    UNAUTHENTICATED,
    Call,
    Problem,
    Receive,
    Send,
    answer_status,
    authorized,
    messages,
    percent,
)
from roost.serve.grpc.service import Malformed, Servicer, clip, request_parser
from roost.serve.security import redact

if TYPE_CHECKING:
    from roost.serve.app import ServeApp

PARSE = request_parser("ModelInferRequest")

log = logging.getLogger(__name__)


async def stream(
    app: ServeApp,
    svc: Servicer,
    limit: int,
    call: Call,
    encoding: bytes | None,
    receive: Receive,
    send: Send,
    deadline: float | None = None,
) -> None:
    """Answer one ModelStreamInfer call (messages of at most `limit` bytes) through `svc`, until `deadline` (event
    loop time) if one is given."""
    if not authorized(app, call):
        return await answer_status(send, UNAUTHENTICATED, UNAUTH)
    await send(START)
    try:
        async with asyncio.timeout_at(deadline):
            code, text = await _answers(app, svc, limit, encoding, receive, send, deadline)
    except TimeoutError:
        code, text = DEADLINE_EXCEEDED, DEADLINE
    if code < 0:
        return  # the client went away: nothing to answer
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    trailers = [(b"grpc-status", b"%d" % code)]
    if text:
        trailers.append((b"grpc-message", percent(text)))
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})


async def _answers(
    app: ServeApp,
    svc: Servicer,
    limit: int,
    encoding: bytes | None,
    receive: Receive,
    send: Send,
    deadline: float | None,
) -> tuple[int, str]:
    """Answer each message of the request stream in order; (grpc-status, grpc-message) to end with (-1: the client
    went away)."""
    buf = bytearray()
    code, text, more = OK, "", True
    while more:
        msg = await receive()
        if msg["type"] != "http.request":
            return -1, ""
        buf += msg.get("body", b"")
        more = msg.get("more_body", False)
        try:
            got, used = messages(buf, encoding, limit)
        except Problem as p:
            code, text = p.code, p.text
            break
        del buf[:used]
        for body in got:
            out = await _answer(app, svc, body, deadline)
            await send(
                {"type": "http.response.body", "body": b"\0" + len(out).to_bytes(4, "big") + out, "more_body": True}
            )
    else:
        if buf:
            code, text = INTERNAL, f"the stream ended inside a message ({len(buf)} bytes after the last one)"
    return code, text


async def _answer(app: ServeApp, svc: Servicer, body: bytes, deadline: float | None) -> bytes:
    """The serialized ModelStreamInferResponse to one request message of the stream (cancelled at the call's
    `deadline`: counted 504; cancelled otherwise, the client went away: 499)."""
    metrics = app.metrics
    t0 = time.perf_counter()
    status, model = 200, ""
    if metrics is not None:
        metrics.enter()
    app.grpc_calls += 1
    try:
        req = PARSE(body)
        if req.__class__ is Malformed:
            raise req.error()
        model = req.model_name
        out = field(2, await svc.ModelInfer(req, None))
    except HTTPError as exc:
        status, out = exc.status, field(1, clip(redact(exc.message)).encode())
    except Exception as exc:
        log.exception("internal error in gRPC ModelStreamInfer")
        status, out = 500, field(1, f"internal error ({type(exc).__name__})".encode())
    except asyncio.CancelledError:
        status = 504 if deadline is not None and asyncio.get_running_loop().time() >= deadline else 499
        raise
    finally:
        app.grpc_calls -= 1
        if metrics is not None:
            metrics.leave()
            known = app.repo.get(model) is not None
            metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
    return out
