"""`inference.GRPCInferenceService` over the worker's models: the same decode/validate core, batcher and errors.

A request problem is INVALID_ARGUMENT with the same message the HTTP side gives (never INTERNAL); an unknown model
is NOT_FOUND; a missing token UNAUTHENTICATED. Each worker binds the port with SO_REUSEPORT (the supervisor holds
it), so the kernel spreads gRPC connections over the workers as it spreads HTTP ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import numpy as np
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]  # protobuf ships no stubs here

from roost.serve.codec import HTTPError, bad, check_binary_floats, element_count
from roost.serve.grpc.fast import Layouts, encode_response
from roost.serve.grpc.proto import message
from roost.serve.protocols.v2 import binary_input, spec_for
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
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
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


def request_parser(name: str) -> Callable[[bytes], Any]:
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
    """The KServe V2 RPCs over a ServeApp's repository (grpc/server.py runs them: ModelInfer in its pool threads, the
    rest on the event loop; ModelStreamInfer is a ModelInfer per message)."""

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
        """Decode, validate, queue on the model's batcher and answer with raw output tensors."""
        model, arrays, rows, rid, wanted = self.prepare(req, context)
        outputs = await self.app.predict(model, arrays, "grpc", rid, rows)
        return encode_response(model, outputs, wanted, rid)

    def prepare(self, req: Any, context: Any) -> tuple[LoadedModel, dict[str, np.ndarray], int | None, str, list[str]]:
        """(model, input arrays, rows when already checked complete, request id, outputs) of a ModelInferRequest.

        The request id is the request's `id`, else the `x-request-id` metadata (each checked like HTTP's), else a
        generated one; it is answered in the response's `id` and `x-request-id` trailing metadata, draws the canary
        split and names the request in the request log."""
        from roost.serve.reqid import checked, new_id

        model = self.app.lookup(req.model_name, req.model_version or None)
        sent = call_metadata(context, METADATA_ID)
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
        return model, arrays, rows, rid, _outputs(req, model)


def call_metadata(context: Any, key: str) -> str | bytes | None:
    """The value of invocation metadata `key` (lower-case), or None."""
    if context is None:
        return None
    header = getattr(context, "header", None)  # the ASGI front's Call: one request header, no list built
    if header is not None and not key.endswith("-bin"):
        value = header(key.encode())
        return None if value is None else value.decode("latin-1")
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v  # type: ignore[no-any-return]  # grpc's metadata values are str (bytes for -bin keys)
    return None
