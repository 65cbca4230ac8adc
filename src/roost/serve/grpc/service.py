"""`inference.GRPCInferenceService` over the worker's models: the same decode/validate core, batcher and errors.

A request problem is INVALID_ARGUMENT with the same message the HTTP side gives (never INTERNAL); an unknown model
is NOT_FOUND; a missing token UNAUTHENTICATED. Each worker binds the port with SO_REUSEPORT (the supervisor holds
it), so the kernel spreads gRPC connections over the workers as it spreads HTTP ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import numpy as np
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # protobuf ships no stubs here

from roost.errors import RoostError
from roost.netpolicy import token_ok
from roost.netpolicy.limits import ConnLimits
from roost.serve.codec import HTTPError, bad, check_binary_floats, element_count
from roost.serve.grpc.fast import Layouts, encode_response, field
from roost.serve.grpc.proto import PACKAGE, RPCS, SERVICE, message
from roost.serve.protocols.v2 import binary_input, spec_for
from roost.serve.security import redact
from roost.serve.signature import TensorSpec

if TYPE_CHECKING:
    from roost.serve.app import ServeApp
    from roost.serve.loader import LoadedModel

log = logging.getLogger(__name__)

# HTTP status of a request problem -> gRPC status code
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# V2 datatype -> the InferTensorContents field that carries its typed values
CONTENTS = {
    "BOOL": "bool_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_ALL_CONTENTS = (*CONTENTS.values(), "uint_contents", "uint64_contents")
MAX_DETAILS = 2000  # characters of an error message; gRPC clients refuse trailers over 16 KiB (default)
METADATA_ID = "x-request-id"  # gRPC's form of HTTP's X-Request-Id header
PUBLIC_RPCS = frozenset({"ServerLive", "ServerReady"})  # never need a token, like /v2/health/*


class Malformed:
    """A request whose bytes are not a valid protobuf message of its RPC's request type."""

    __slots__ = ("kind", "why")

    def __init__(self, kind: str, why: str) -> None:
        self.kind, self.why = kind, why

    def error(self) -> HTTPError:
        """The 400 (INVALID_ARGUMENT) that answers it."""
        return HTTPError(
            400,
            f"the request is not a valid inference.{self.kind} protobuf message ({self.why[:200]}); "
            "send the KServe V2 grpc_predict_v2.proto message of this RPC",
        )


def _parser(name: str) -> Callable[[bytes], Any]:
    """The request deserializer of message `name`: a Malformed (answered INVALID_ARGUMENT) for bytes that do not
    parse, where gRPC would answer UNKNOWN and log a traceback."""
    parse = message(name).FromString

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as exc:
            return Malformed(name, str(exc))

    return deserialize


def clip(text: str) -> str:
    """An error message short enough for gRPC's trailing metadata: a long quoted name keeps its head and the
    message its tail (the hint)."""
    if len(text) <= MAX_DETAILS:
        return text
    cut = len(text) - MAX_DETAILS + 100
    return f"{text[:1200]} ...[{cut} characters cut]... {text[-(MAX_DETAILS - 1300) :]}"


def _typed_input(contents: Any, spec: TensorSpec, count: int) -> np.ndarray:
    """Decode an input sent in InferTensorContents (the field that matches its datatype, `count` values)."""
    want = CONTENTS[spec.v2_datatype]
    for other in _ALL_CONTENTS:
        if other != want and len(getattr(contents, other)):
            raise bad(f"input {spec.name!r} ({spec.v2_datatype}) sends contents.{other}; its values go in {want}")
    values = getattr(contents, want)
    if len(values) != count:
        raise bad(f"input {spec.name!r}: shape needs {count} values but contents.{want} has {len(values)}")
    if spec.dtype != "string":
        return check_binary_floats(np.array(values, dtype=spec.np_dtype), spec)
    out = np.empty(count, dtype=object)
    for i, v in enumerate(values):
        try:
            out[i] = v.decode("utf-8")
        except UnicodeDecodeError:
            raise bad(f"input {spec.name!r}: BYTES element {i} is not UTF-8 text") from None
    return out


def decode_request(model: LoadedModel, req: Any) -> dict[str, np.ndarray]:
    """A ModelInferRequest's inputs (typed contents or raw_input_contents) as arrays checked like V2 HTTP's."""
    if not req.inputs:
        raise bad("request needs at least one input {name, datatype, shape, contents}")
    raw = req.raw_input_contents
    if raw and len(raw) != len(req.inputs):
        raise bad(
            f"raw_input_contents has {len(raw)} entries for {len(req.inputs)} inputs; send one per input, "
            "or none and put the values in each input's contents"
        )
    arrays: dict[str, np.ndarray] = {}
    for i, inp in enumerate(req.inputs):
        name = inp.name
        if not name:
            raise bad(f"inputs[{i}] needs a name")
        if name in arrays:
            raise bad(f"input {name!r} appears twice")
        if not inp.datatype:
            raise bad(f"input {name!r} needs a datatype such as FP32 or BYTES")
        shape = list(inp.shape)
        count = element_count(shape, name)
        spec = spec_for(model, name, inp.datatype, None)
        if spec.v2_datatype != inp.datatype:  # an entity id of a datatype the server does not take
            raise bad(f"input {name!r} has datatype {inp.datatype[:20]!r}; entity ids are INT64, INT32 or BYTES")
        if raw:
            if inp.HasField("contents") and any(len(getattr(inp.contents, f)) for f in _ALL_CONTENTS):
                raise bad(f"input {name!r} sends both contents and raw_input_contents; send one of them")
            arr = binary_input(spec, memoryview(raw[i]), count)
        else:
            arr = _typed_input(inp.contents, spec, count)
        arrays[name] = arr.reshape(shape)
    return arrays


def _outputs(req: Any, model: LoadedModel) -> list[str]:
    """The output names a request asked for (all outputs by default)."""
    known = [s.name for s in model.package.outputs]
    wanted = [o.name for o in req.outputs]
    for name in wanted:
        if name not in known:
            raise bad(f"unknown output {name!r}; the model's outputs are {', '.join(map(repr, known))}")
    return wanted or known


class Servicer:  # method names are the RPC names of the spec
    """The KServe V2 unary RPCs over a ServeApp's repository (ModelStreamInfer wraps ModelInfer: _stream)."""

    def __init__(self, app: ServeApp) -> None:
        self.app = app
        self.layouts = Layouts()

    async def ServerLive(self, req: Any) -> Any:
        """Whether the worker is alive."""
        return message("ServerLiveResponse")(live=True)

    async def ServerReady(self, req: Any) -> Any:
        """Whether every model is loaded and the worker is not draining."""
        ok = self.app.ready and all(s.current.batcher.alive for s in self.app.repo.slots.values())
        return message("ServerReadyResponse")(ready=ok)

    async def ModelReady(self, req: Any) -> Any:
        """Whether a served model (optionally exactly that version) is ready; on a many-model server, as HTTP's
        ready: a model not loaded yet is ready (it loads on its first request) unless its last load failed."""
        lazy = self.app.lazy
        if lazy is None:
            self.app.lookup(req.name, req.version or None)
            return message("ModelReadyResponse")(ready=True)
        key = lazy.target(req.name, req.version or None)
        state, _ = lazy.state(key)
        return message("ModelReadyResponse")(ready=not (key in lazy.failed and state == "UNAVAILABLE"))

    async def ServerMetadata(self, req: Any) -> Any:
        """Server name, version and protocol extensions."""
        from roost import __version__

        return message("ServerMetadataResponse")(name="roost", version=__version__, extensions=["binary_tensor_data"])

    async def ModelMetadata(self, req: Any) -> Any:
        """The model's name, versions, platform and signature, as GET /v2/models/NAME gives them (a many-model
        server loads the model first, as HTTP does)."""
        lazy = self.app.lazy
        if lazy is not None:
            async with lazy.use(req.name, req.version or None) as model:
                return self._metadata(model)
        return self._metadata(self.app.lookup(req.name, req.version or None))

    def _metadata(self, model: LoadedModel) -> Any:
        """The ModelMetadataResponse of `model`."""
        resp = message("ModelMetadataResponse")(name=model.name, versions=[model.version], platform="onnxruntime_onnx")
        for spec, out in [(s, resp.inputs) for s in model.package.inputs] + [
            (s, resp.outputs) for s in model.package.outputs
        ]:
            out.add(name=spec.name, datatype=spec.v2_datatype, shape=list(spec.shape))
        return resp

    async def ModelInfer(self, req: Any, context: Any = None) -> bytes:
        """Answer one inference request (_infer); a many-model server loads the model first and keeps it from
        eviction until answered, as its HTTP routes do."""
        lazy = self.app.lazy
        if lazy is None:
            return await self._infer(req, context)
        async with lazy.use(req.model_name, req.model_version or None):
            return await self._infer(req, context)

    async def _infer(self, req: Any, context: Any) -> bytes:
        """Decode, validate, queue on the model's batcher and answer with raw output tensors.

        The request id is the request's `id`, else the `x-request-id` metadata (each checked like HTTP's), else a
        generated one; it is answered in the response's `id` and `x-request-id` trailing metadata, draws the canary
        split and names the request in the request log."""
        from roost.serve.reqid import checked, new_id

        model = self.app.lookup(req.model_name, req.model_version or None)
        sent = _metadata(context, METADATA_ID)
        if req.id:
            rid = checked(req.id, "the request's 'id'")
        elif sent is not None:
            rid = checked(sent, "the x-request-id metadata")
        else:
            rid = new_id()
        if context is not None:
            context.set_trailing_metadata(((METADATA_ID, rid),))
        fast = self.layouts.decode(model, req)
        arrays, rows = fast if fast is not None else (decode_request(model, req), None)
        if not req.model_version:
            chosen = self.app.choose(model, rid)  # a canary takes its share of unpinned requests
            if chosen is not model and chosen.package.inputs != model.package.inputs:
                rows = None  # checked against the primary's signature: check again against the canary's
            model = chosen
        wanted = _outputs(req, model)
        outputs = await self.app.predict(model, arrays, "grpc", rid, rows)
        return encode_response(model, outputs, wanted, rid)


def _metadata(context: Any, key: str) -> str | bytes | None:
    """The value of invocation metadata `key` (lower-case), or None."""
    if context is None:
        return None
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v  # type: ignore[no-any-return]  # grpc's metadata values are str (bytes for -bin keys)
    return None


def _wrap(app: ServeApp, rpc: str, fn: Callable[..., Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    """An aio handler around `fn`: token check, metrics, and request errors as gRPC status codes."""

    async def handler(req: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        t0 = time.perf_counter()
        status, code, text = 200, grpc.StatusCode.OK, ""
        infer = rpc == "ModelInfer"
        malformed = req.__class__ is Malformed
        model = req.model_name if infer and not malformed else ""
        if app.metrics is not None:
            app.metrics.inflight.inc()
        app.grpc_calls += infer
        try:
            if app.auth is not None and rpc not in PUBLIC_RPCS and not app.public_inference:
                sent = _metadata(context, "authorization")
                if not token_ok(sent.encode() if isinstance(sent, str) else sent, app.auth):
                    raise HTTPError(401, "missing or wrong bearer token (metadata authorization: Bearer TOKEN)")
            if malformed:  # after the token check: an anonymous caller learns nothing more than UNAUTHENTICATED
                raise req.error()
            return await (fn(req, context) if rpc == "ModelInfer" else fn(req))
        except HTTPError as exc:
            status, code, text = exc.status, CODES.get(exc.status, grpc.StatusCode.UNKNOWN), clip(redact(exc.message))
        except Exception as exc:
            log.exception("internal error in gRPC %s", rpc)
            status, code, text = 500, grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})"
        finally:
            app.grpc_calls -= infer
            if app.metrics is not None:
                app.metrics.inflight.dec()
                if rpc == "ModelInfer":
                    known = app.repo.get(model) is not None
                    app.metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
        await context.abort(code, text)

    return handler


def handler(app: ServeApp) -> grpc.GenericRpcHandler:
    """The generic handler of `inference.GRPCInferenceService` for `app`."""
    svc = Servicer(app)
    methods = {}
    for rpc, (req_name, resp_name) in RPCS.items():
        methods[rpc] = grpc.unary_unary_rpc_method_handler(
            _wrap(app, rpc, getattr(svc, rpc)),
            request_deserializer=_parser(req_name),
            # ModelInfer answers serialized bytes already (grpc/fast.py)
            response_serializer=None if rpc == "ModelInfer" else message(resp_name).SerializeToString,
        )
    methods["ModelStreamInfer"] = grpc.stream_stream_rpc_method_handler(
        _stream(app, svc), request_deserializer=_parser("ModelInferRequest"), response_serializer=None
    )
    return grpc.method_handlers_generic_handler(f"{PACKAGE}.{SERVICE}", methods)


def _stream(app: ServeApp, svc: Servicer) -> Callable[[Any, Any], AsyncIterator[bytes]]:
    """The ModelStreamInfer handler: each request of the stream is a ModelInfer (same decode, batcher, metrics,
    request id from its `id` or generated), answered in order with a ModelStreamInferResponse; a request problem is
    that response's error_message (Triton's behaviour) and the stream goes on. The token is checked once."""

    async def handler(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[bytes]:
        if app.auth is not None and not app.public_inference:
            sent = _metadata(context, "authorization")
            if not token_ok(sent.encode() if isinstance(sent, str) else sent, app.auth):
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "missing or wrong bearer token (metadata authorization: Bearer TOKEN)",
                )
        metrics = app.metrics
        async for req in requests:
            t0 = time.perf_counter()
            status, model = 200, ""
            if metrics is not None:
                metrics.inflight.inc()
            app.grpc_calls += 1
            try:
                if req.__class__ is Malformed:
                    raise req.error()
                model = req.model_name
                out = field(2, await svc.ModelInfer(req, None))
            except HTTPError as exc:
                status, out = exc.status, field(1, clip(redact(exc.message)).encode())
            except Exception as exc:
                log.exception("internal error in gRPC ModelStreamInfer")
                status, out = 500, field(1, f"internal error ({type(exc).__name__})".encode())
            finally:
                app.grpc_calls -= 1
                if metrics is not None:
                    metrics.inflight.dec()
                    known = app.repo.get(model) is not None
                    metrics.observe(model if known else "", "grpc", status, time.perf_counter() - t0)
            yield out

    return handler


async def start_server(
    app: ServeApp, host: str, port: int, max_message: int, limits: ConnLimits | None = None
) -> grpc.aio.Server:
    """Serve `app` over gRPC on host:port (SO_REUSEPORT: every worker binds the same port); returns the server.

    `limits` as for HTTP: a connection must finish its HTTP/2 preface within header_timeout_s (gRPC's default is
    120 s), is closed (GOAWAY) after keepalive_s idle, and over max_connections new connections are closed (gRPC
    has no place for a 503 before HTTP/2 starts; clients see UNAVAILABLE)."""
    limits = limits or ConnLimits()
    opts = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", -1),
        ("grpc.server_handshake_timeout_ms", int(limits.header_timeout_s * 1000)),
        ("grpc.max_connection_idle_ms", int(limits.keepalive_s * 1000)),
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
    ]
    server = grpc.aio.server(options=opts)
    server.add_generic_rpc_handlers((handler(app),))
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(addr)
    except RuntimeError as exc:
        bound, why = 0, str(exc)
    else:
        why = "the port is taken"
    if not bound:
        raise RoostError(f"cannot serve gRPC on {addr}: {why}", hint="pick another --grpc-port")
    await server.start()
    return server
