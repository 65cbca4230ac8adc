"""The gRPC server: a synchronous `grpc.server` whose pool threads answer ModelInfer themselves (decode, model run,
encode) and hand the rest to the worker's event loop.

Why not grpc.aio: measured per call on the same handler work (bench/grpc_kind.py, bench/RESULTS.md), grpc.aio's own
per-call Python (three tasks and two waits per call) cost 0.13-0.2 ms of server CPU more than grpc's thread-pool
server, at 1 and 64 rows, 1 and 16 clients. A call runs in its pool thread when nothing in it needs the event loop:
an explicit-models server, inputs that need no online features, no shadow, a model whose runs are short
(inline_ok) and not replaced. Everything else (many-model loading, online features, shadows, the batcher's
merging, the metadata RPCs) runs as before on the event loop, which the thread waits for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from roost.errors import RoostError
from roost.netpolicy import token_ok
from roost.netpolicy.limits import ConnLimits
from roost.serve.batcher import BatcherClosed
from roost.serve.codec import HTTPError, check_inputs
from roost.serve.features import needs_features
from roost.serve.grpc.fast import encode_response, field
from roost.serve.grpc.pool import CallPool
from roost.serve.grpc.proto import PACKAGE, RPCS, SERVICE, message
from roost.serve.grpc.service import CODES, PUBLIC_RPCS, Malformed, Servicer, call_metadata, clip, request_parser
from roost.serve.security import redact

if TYPE_CHECKING:
    from roost.serve.app import ServeApp
    from roost.serve.grpc.h2 import H2Server

log = logging.getLogger(__name__)

MAX_RPCS = 64  # pool threads at most: RPCs answered at once per worker (an open stream holds one); more wait
HOT_THREADS = 4  # pool threads for calls that do not wait (grpc/pool.py: fewer context switches per call)
UNAUTH = "missing or wrong bearer token (metadata authorization: Bearer TOKEN)"
DEADLINE = "Deadline Exceeded"  # grpcio's words


class Ending:
    """The end of one call (its deadline, or the client gone) cancels the work it waits for on the event loop, so a
    request queued on a batcher is dropped; one per call (a stream's messages share it)."""

    __slots__ = ("context", "fut", "ended")

    def __init__(self, context: grpc.ServicerContext) -> None:
        self.context = context
        self.fut: concurrent.futures.Future[Any] | None = None
        self.ended = not context.add_callback(self.end)  # (False: the call ended already)

    def end(self) -> None:
        """The call ended: cancel what it waits for."""
        self.ended = True
        fut = self.fut
        if fut is not None:
            fut.cancel()

    def error(self) -> HTTPError:
        """What answers the cancelled call (its client sees the deadline's or its own status anyway)."""
        left = self.context.time_remaining()
        if left is not None and left <= 0:
            return HTTPError(504, DEADLINE)
        return HTTPError(499, "the client cancelled the call")


def _ending(context: Any) -> Ending | None:
    """The Ending of a unary call (made only for work on the loop: a call answered in its thread needs none)."""
    return None if context is None else Ending(context)


class Bridge:
    """What the pool threads share: the app, its servicer, the event loop and the in-flight call count."""

    def __init__(self, app: ServeApp, loop: asyncio.AbstractEventLoop, pool: CallPool) -> None:
        self.app, self.loop, self.pool = app, loop, pool
        self.svc = Servicer(app)
        self._lock = threading.Lock()

    def calls(self, delta: int) -> None:
        """Count a ModelInfer call in (+1) or out (-1): ServeApp.alone reads the count from the loop's thread."""
        with self._lock:
            self.app.grpc_calls += delta

    def on_loop(self, coro: Coroutine[Any, Any, Any], ending: Ending | None = None) -> Any:
        """Run `coro` on the event loop and wait for its result (503 if the loop stops first); cancelled when the
        call of `ending` ends."""
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed
            coro.close()
            raise HTTPError(503, "the server is shutting down; retry on another worker") from None
        if ending is not None:
            ending.fut = fut
            if ending.ended:
                fut.cancel()
        with self.pool.blocking():
            while True:
                try:
                    return fut.result(0.5)
                except concurrent.futures.CancelledError:
                    raise (ending.error() if ending is not None else HTTPError(503, "cancelled")) from None
                except concurrent.futures.TimeoutError:
                    if self.loop.is_closed() or not self.loop.is_running():
                        fut.cancel()
                        raise HTTPError(503, "the server is shutting down; retry on another worker") from None

    def infer(self, req: Any, context: Any, ending: Ending | None = None) -> bytes:
        """One ModelInfer, in this thread when nothing in it needs the event loop (see the module docstring); work on
        the loop is cancelled at the end of the call (`ending`, else made from `context`)."""
        app = self.app
        if app.lazy is not None:
            ending = ending or _ending(context)
            return self.on_loop(self.svc.ModelInfer(req, context), ending)  # type: ignore[no-any-return]
        model, arrays, rows, rid, wanted = self.svc.prepare(req, context)
        if rows is None and not needs_features(model.package, arrays):
            rows = check_inputs(arrays, model.package)  # (as ServeApp.predict does: pure, so here)
        if rows is None or app.shadow is not None or not model.inline_ok or model.batcher.closed:
            outputs = self.on_loop(app.predict(model, arrays, "grpc", rid, rows), ending or _ending(context))
            return encode_response(model, outputs, wanted, rid)
        t0 = time.perf_counter()
        try:
            outputs = model.batcher.run_now(arrays, rows)
        except BatcherClosed:
            raise HTTPError(503, f"model {model.name} version {model.version} was just replaced; retry") from None
        except Exception as exc:  # noqa: BLE001 - the graph rejected values that passed the signature checks
            raise HTTPError(400, f"the model could not run on this input: {str(exc)[:300]}") from None
        if app.metrics is not None:  # as ServeApp.predict does after a run
            app.metrics.answered(model.name, model.version)
        if app.reqlog is not None:
            try:
                app.reqlog.maybe_log(model, "grpc", arrays, outputs, time.perf_counter() - t0, rid, None)
            except Exception:
                log.warning("request log: cannot queue a request of %s", model.name, exc_info=True)
        return encode_response(model, outputs, wanted, rid)


def _authorized(app: ServeApp, context: Any) -> bool:
    """Whether the call carries the server's token (or needs none)."""
    if app.auth is None or app.public_inference:
        return True
    sent = call_metadata(context, "authorization")
    return token_ok(sent.encode() if isinstance(sent, str) else sent, app.auth)


def _unary(bridge: Bridge, rpc: str) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A pool-thread handler of `rpc`: token check, metrics, and request errors as gRPC status codes."""
    app = bridge.app
    infer = rpc == "ModelInfer"
    method = getattr(bridge.svc, rpc)

    def handler(req: Any, context: grpc.ServicerContext) -> Any:
        t0 = time.perf_counter()
        status, code, text = 200, grpc.StatusCode.OK, ""
        malformed = req.__class__ is Malformed
        model = req.model_name if infer and not malformed else ""
        if app.metrics is not None:
            app.metrics.inflight.inc()
        if infer:
            bridge.calls(1)
        try:
            if rpc not in PUBLIC_RPCS and not _authorized(app, context):
                raise HTTPError(401, UNAUTH)
            if malformed:  # after the token check: an anonymous caller learns nothing more than UNAUTHENTICATED
                raise req.error()
            return bridge.infer(req, context) if infer else bridge.on_loop(method(req))
        except HTTPError as exc:
            status, code, text = exc.status, CODES.get(exc.status, grpc.StatusCode.UNKNOWN), clip(redact(exc.message))
        except Exception as exc:
            log.exception("internal error in gRPC %s", rpc)
            status, code, text = 500, grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
        finally:
            if infer:
                bridge.calls(-1)
            if app.metrics is not None:
                app.metrics.inflight.dec()
                if infer:
                    known = app.repo.get(model) is not None
                    app.metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
        context.abort(code, text)  # raises: grpc answers the status

    return handler


def _stream(bridge: Bridge) -> Callable[[Iterator[Any], grpc.ServicerContext], Iterator[bytes]]:
    """The ModelStreamInfer handler: each request of the stream is a ModelInfer (same decode, model run, metrics,
    request id from its `id` or generated), answered in order with a ModelStreamInferResponse; a request problem is
    that response's error_message (Triton's behaviour) and the stream goes on. The token is checked once."""
    app = bridge.app

    def handler(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[bytes]:
        if not _authorized(app, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTH)
        with bridge.pool.blocking():  # the stream holds this thread while it waits for its next message
            yield from _answers(bridge, requests, Ending(context))

    return handler


def _answers(bridge: Bridge, requests: Iterator[Any], ending: Ending) -> Iterator[bytes]:
    """A ModelStreamInferResponse (serialized) for each request of a stream (ended by `ending`), in order."""
    app = bridge.app
    metrics = app.metrics
    for req in requests:
        t0 = time.perf_counter()
        status, model = 200, ""
        if metrics is not None:
            metrics.inflight.inc()
        bridge.calls(1)
        try:
            if req.__class__ is Malformed:
                raise req.error()
            model = req.model_name
            out = field(2, bridge.infer(req, None, ending))
        except HTTPError as exc:
            status, out = exc.status, field(1, clip(redact(exc.message)).encode())
        except Exception as exc:
            log.exception("internal error in gRPC ModelStreamInfer")
            status, out = 500, field(1, f"internal error ({type(exc).__name__})".encode())
        finally:
            bridge.calls(-1)
            if metrics is not None:
                metrics.inflight.dec()
                known = app.repo.get(model) is not None
                metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
        yield out


def handler(bridge: Bridge) -> grpc.GenericRpcHandler:
    """The generic handler of `inference.GRPCInferenceService` over `bridge`."""
    methods = {}
    for rpc, (req_name, resp_name) in RPCS.items():
        methods[rpc] = grpc.unary_unary_rpc_method_handler(
            _unary(bridge, rpc),
            request_deserializer=request_parser(req_name),
            # ModelInfer answers serialized bytes already (grpc/fast.py)
            response_serializer=None if rpc == "ModelInfer" else message(resp_name).SerializeToString,
        )
    methods["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
        _stream(bridge), request_deserializer=request_parser("ModelInferRequest"), response_serializer=None
    )
    return grpc.method_handlers_generic_handler(f"{PACKAGE}.{SERVICE}", methods)


class GrpcServer:
    """A started gRPC server of one worker; `await stop(grace)` drains it without blocking the event loop."""

    def __init__(self, server: grpc.Server, pool: CallPool) -> None:
        self.server, self.pool = server, pool

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls, let calls in progress finish for up to `grace` seconds (they may need the loop)."""
        done = self.server.stop(grace)
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        self.pool.shutdown(wait=False, cancel_futures=True)


FRONT_ENV = "ROOST_SERVE_GRPC_FRONT"
FRONTS = ("asgi", "grpcio")


def grpc_front(front: str | None = None) -> str:
    """The gRPC front to serve with: `front`, else $ROOST_SERVE_GRPC_FRONT, else asgi (uvicorn's HTTP/2 on the
    worker's event loop, grpc/asgi.py; grpcio's thread-pool server is the other)."""
    chosen = (front or os.environ.get(FRONT_ENV) or FRONTS[0]).strip().lower()
    if chosen not in FRONTS:
        raise RoostError(
            f"{FRONT_ENV}={chosen[:40]!r} is not a gRPC front", hint=f"use one of {', '.join(FRONTS)} (default asgi)"
        )
    return chosen


async def start_server(
    app: ServeApp,
    host: str,
    port: int,
    max_message: int,
    limits: ConnLimits | None = None,
    front: str | None = None,
) -> GrpcServer | H2Server:
    """Serve `app` over gRPC on host:port (SO_REUSEPORT: every worker binds the same port); returns the server.

    `front` (grpc_front): asgi serves through uvicorn's HTTP/2 on this event loop (grpc/h2.py), grpcio through
    grpcio's thread-pool server. `limits` as for HTTP: a connection must finish its HTTP/2 preface within
    header_timeout_s (gRPC's default is 120 s), is closed (GOAWAY) after keepalive_s idle, and over max_connections
    new connections are closed (gRPC has no place for a 503 before HTTP/2 starts; clients see UNAVAILABLE)."""
    limits = limits or ConnLimits()
    if grpc_front(front) == "asgi":
        from roost.serve.grpc.h2 import start

        return await start(app, host, port, max_message, limits)
    opts = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", -1),
        ("grpc.server_handshake_timeout_ms", int(limits.header_timeout_s * 1000)),
        ("grpc.max_connection_idle_ms", int(limits.keepalive_s * 1000)),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
    ]
    pool = CallPool(HOT_THREADS, MAX_RPCS)
    server = grpc.server(pool, options=opts)
    server.add_generic_rpc_handlers((handler(Bridge(app, asyncio.get_running_loop(), pool)),))
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(addr)
    except RuntimeError as exc:
        bound, why = 0, str(exc)
    else:
        why = "the port is taken"
    if not bound:
        pool.shutdown(wait=False)
        raise RoostError(f"cannot serve gRPC on {addr}: {why}", hint="pick another --grpc-port")
    server.start()
    return GrpcServer(server, pool)
