"""KServe V2 / Open Inference Protocol over HTTP: JSON tensors and the binary tensor data extension."""

from __future__ import annotations

import struct
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from roost.serve.codec import (
    MAX_ELEMENTS,
    HTTPError,
    bad,
    check_binary_floats,
    check_method,
    columns,
    decode_bytes,
    element_count,
    encode_bytes,
)
from roost.serve.features import entity_spec
from roost.serve.matrixgraph import ColumnFeed
from roost.serve.reqid import checked
from roost.serve.signature import DTYPE_TO_V2, NUMPY_TO_V2, V2_TO_DTYPE, TensorSpec

if TYPE_CHECKING:
    from roost.serve.app import ServeApp
    from roost.serve.loader import LoadedModel
    from roost.serve.reqid import Call

JSON = b"application/json"
OCTET = b"application/octet-stream"
Reply = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]


def model_metadata(model: LoadedModel) -> dict[str, Any]:
    """The V2 model metadata document."""
    pkg = model.package
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "onnxruntime_onnx",
        "inputs": [s.to_v2() for s in pkg.inputs],
        "outputs": [s.to_v2() for s in pkg.outputs],
        "parameters": {
            "task": pkg.task,
            "classes": pkg.classes,
            "feature_refs": pkg.feature_refs,
            "entities": pkg.entities,
        },
    }


def spec_for(model: LoadedModel, name: str, datatype: str, data: Any) -> TensorSpec:
    """The signature spec of a request input, an entity-id spec, or a 400 naming the unknown input."""
    spec = model.package.input(name)
    if spec is not None:
        if datatype != spec.v2_datatype:
            raise bad(f"input {name!r} has datatype {datatype} but the model expects {spec.v2_datatype}")
        return spec
    if name in model.package.entities or name in model.package.request_fields:
        if datatype in V2_TO_DTYPE:
            return TensorSpec(name, V2_TO_DTYPE[datatype], (-1,))
        return entity_spec(name, data)
    names = ", ".join(repr(s.name) for s in model.package.inputs[:8])
    raise bad(
        f"unknown input {name!r}; the model's inputs are {names}{' ...' if len(model.package.inputs) > 8 else ''}"
    )


def binary_input(spec: TensorSpec, chunk: memoryview, count: int) -> np.ndarray:
    """Decode one binary-encoded input tensor."""
    if spec.dtype == "string":
        return decode_bytes(chunk, count, spec.name)
    dt = spec.np_dtype.newbyteorder("<")
    if len(chunk) != count * dt.itemsize:
        raise bad(
            f"input {spec.name!r}: binary_data_size is {len(chunk)} bytes but shape needs "
            f"{count} x {dt.itemsize} = {count * dt.itemsize}"
        )
    return check_binary_floats(np.frombuffer(chunk, dtype=dt), spec)


def fast_inputs(model: LoadedModel, inputs: list[Any], bare: bool = False) -> tuple[dict[str, np.ndarray], int] | None:
    """(arrays, rows) when the request sends every input of a model whose inputs are all float32 columns
    (Package.float_columns), each once as {name, datatype: FP32, shape: [n], data: [n numbers]} with one n > 0:
    the numbers go into one (inputs x n) float32 matrix in the model's input order (one C-level conversion, no
    per-column numpy call) and each input is a row of it (a view; `bare` and a model that feeds the matrix as it
    is: no views, ColumnFeed.bare). The set is then complete and consistent (check_inputs has nothing left to find).
    None for anything else, which the general decoder then handles (and explains): other shapes or dtypes, unknown,
    repeated or missing names, ragged or non-numeric data, overflow."""
    order = model.package.float_columns
    if order is None or len(inputs) != len(order):
        return None
    k = len(order)
    datas: list[Any] = [None] * k
    n = -1
    try:
        for inp in inputs:
            if inp.__class__ is not dict or len(inp) != 4:
                return None
            name, datatype, shape, data = _FIELDS(inp)  # KeyError: another key; TypeError: a name not a string
            j = order[name]  # KeyError: not an input
            if (
                datatype != "FP32"
                or shape.__class__ is not list
                or len(shape) != 1
                or data.__class__ is not list
                or datas[j] is not None
            ):
                return None
            if n < 0:
                n = shape[0]
                if n.__class__ is not int or not 0 < n <= MAX_ELEMENTS:
                    return None
            if shape[0] != n or len(data) != n or data[0].__class__ not in (float, int):  # ragged; true/false
                return None
            datas[j] = data
    except (KeyError, TypeError):
        return None
    try:
        # struct packs only real numbers (a string, null or nested list is struct.error) and refuses a value too
        # large for float32 (OverflowError); it is several times faster than array('f') or numpy on a list
        buf = float32_packer(k * n).pack(*chain.from_iterable(datas))
    except (struct.error, OverflowError):
        return None
    matrix = np.frombuffer(buf, dtype="<f4").reshape(k, n)  # (struct packs true/false as 1.0/0.0, as numeric inputs)
    if bare and model.feeds_matrix(order):
        return ColumnFeed.bare(order, matrix), n
    return ColumnFeed(order, matrix), n


_FIELDS = itemgetter("name", "datatype", "shape", "data")


@lru_cache(maxsize=64)
def float32_packer(count: int) -> struct.Struct:
    """A packer of `count` little-endian float32 values (cached: a server sees few distinct request sizes)."""
    return struct.Struct(f"<{count}f")


def decode_request(
    model: LoadedModel, body: bytes, header_len: bytes | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Parse a V2 inference request (JSON, optionally followed by binary tensors) into input arrays."""
    req, arrays, _ = decode(model, body, header_len)
    return req, arrays


def decode(
    model: LoadedModel, body: bytes, header_len: bytes | None, bare: bool = False
) -> tuple[dict[str, Any], dict[str, np.ndarray], int | None]:
    """Like decode_request, plus the row count when the inputs are already checked complete (see fast_inputs;
    `bare`: the matrix without per-input views where the model feeds it as it is)."""
    binary: memoryview | None = None
    if header_len is not None:
        if not (header_len.isdigit() and len(header_len) <= 18):  # int() also reads " 12 ", "+5" and "1_0"
            shown = header_len[:40].decode("latin-1")
            raise bad(f"Inference-Header-Content-Length must be an integer byte count (digits only), got {shown!r}")
        n = int(header_len)
        if n > len(body):
            raise bad(f"Inference-Header-Content-Length is {n} but the body has {len(body)} bytes")
        binary = memoryview(body)[n:]
        body = body[:n]
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(req, dict):
        raise bad("request body must be a JSON object with an 'inputs' list")
    if not isinstance(req.get("parameters", {}), dict):
        raise bad("the request's 'parameters' must be a JSON object")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("request needs a non-empty 'inputs' list of {name, datatype, shape, data}")
    if binary is None:
        fast = fast_inputs(model, inputs, bare)
        if fast is not None:
            return req, fast[0], fast[1]
    arrays: dict[str, np.ndarray] = {}
    pending: list[tuple[str, Any, int, TensorSpec, Any]] = []  # JSON inputs, converted together below
    offset = 0
    seen: set[str] = set()
    by_name = model.package.input_map
    for i, inp in enumerate(inputs):
        # fast path: {"name", "datatype", "shape": [n], "data"} for a 1-D signature input, nothing else
        name = inp.get("name") if inp.__class__ is dict else None
        if name.__class__ is str and len(inp) == 4:
            spec = by_name.get(name)
            shape = inp.get("shape")
            if (
                spec is not None
                and inp.get("datatype") == spec.v2_datatype
                and shape.__class__ is list
                and len(shape) == 1
                and len(spec.shape) == 1
                and shape[0].__class__ is int
                and 0 <= shape[0] <= MAX_ELEMENTS
                and "data" in inp
                and spec.name not in seen
            ):
                seen.add(spec.name)
                pending.append((spec.name, shape, shape[0], spec, inp["data"]))
                continue
        if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
            raise bad(f"inputs[{i}] must be an object with a string 'name'")
        name = inp["name"]
        if name in seen:
            raise bad(f"input {name!r} appears twice")
        seen.add(name)
        datatype = inp.get("datatype")
        if not isinstance(datatype, str):
            raise bad(f"input {name!r} needs a string 'datatype' such as FP32 or BYTES")
        shape = inp.get("shape")
        count = element_count(shape, name)
        spec = spec_for(model, name, datatype, inp.get("data"))
        params = inp.get("parameters")
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if type(size) is not int or size < 0:
                raise bad(f"input {name!r}: binary_data_size must be a non-negative integer")
            if binary is None or offset + size > len(binary):
                raise bad(
                    f"input {name!r}: binary_data_size {size} but the binary part of the body is "
                    f"{0 if binary is None else len(binary) - offset} bytes "
                    "(is the Inference-Header-Content-Length header set?)"
                )
            arrays[name] = binary_input(spec, binary[offset : offset + size], count).reshape(shape)
            offset += size
        else:
            if "data" not in inp:
                raise bad(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
            pending.append((name, shape, count, spec, inp["data"]))
    if binary is not None and offset != len(binary):
        raise bad(f"{len(binary) - offset} bytes of binary data are not claimed by any input's binary_data_size")
    for (name, shape, count, _, _), arr in zip(pending, columns([(p[3], p[4]) for p in pending])):
        if arr.size != count:
            raise bad(f"input {name!r}: shape {shape} needs {count} values but 'data' has {arr.size}")
        arrays[name] = arr if arr.ndim == 1 and len(shape) == 1 else arr.reshape(shape)
    return req, arrays, None


def _requested(req: dict[str, Any], model: LoadedModel) -> list[tuple[str, bool]]:
    """(output name, as binary) for each output the request asked for (all outputs by default)."""
    params = req.get("parameters")
    default_bin = _flag(params.get("binary_data_output", False), "parameters.binary_data_output") if params else False
    outs = req.get("outputs")
    known = [s.name for s in model.package.outputs]
    if outs is None:
        return [(n, default_bin) for n in known]
    if not isinstance(outs, list):
        raise bad("'outputs' must be a list of {name, parameters}")
    chosen = []
    for o in outs:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise bad("each entry of 'outputs' needs a string 'name'")
        if o["name"] not in known:
            raise bad(f"unknown output {o['name']!r}; the model's outputs are {', '.join(map(repr, known))}")
        p = o.get("parameters")
        if p is not None and not isinstance(p, dict):
            raise bad(f"output {o['name']!r}: 'parameters' must be a JSON object")
        where = f"output {o['name']!r} parameters.binary_data"
        chosen.append((o["name"], _flag(p.get("binary_data", default_bin), where) if p else default_bin))
    return chosen


def _flag(value: Any, where: str) -> bool:
    """A JSON boolean parameter; anything else (the string "no" would read as true) is a 400."""
    if value is not True and value is not False:
        raise bad(f"{where} must be true or false, got {orjson.dumps(value)[:40].decode(errors='replace')}")
    return value


def encode_response(
    req: dict[str, Any],
    model: LoadedModel,
    outputs: dict[str, np.ndarray],
    wanted: list[tuple[str, bool]],
    request_id: str | None = None,
) -> Reply:
    """Build the V2 response: JSON only, or JSON header + binary tensors; `id` is the request id."""
    entries, blobs = [], []
    for name, as_binary in wanted:
        arr = outputs[name]
        dtype = DTYPE_TO_V2.get(arr.dtype) or NUMPY_TO_V2.get(arr.dtype.name, "BYTES")
        entry: dict[str, Any] = {"name": name, "datatype": dtype, "shape": list(arr.shape)}
        if as_binary:
            raw = (
                encode_bytes(arr)
                if dtype == "BYTES"
                else np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif dtype == "BYTES":
            entry["data"] = [v.decode() if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)]
        else:
            entry["data"] = np.ascontiguousarray(arr).reshape(-1)
        entries.append(entry)
    resp: dict[str, Any] = {"model_name": model.name, "model_version": model.version, "outputs": entries}
    rid = request_id or req.get("id")
    if isinstance(rid, str):
        resp["id"] = rid
    head = orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return 200, head, JSON, []
    return 200, head + b"".join(blobs), OCTET, [(b"inference-header-content-length", str(len(head)).encode())]


async def infer(
    app: ServeApp, name: str, version: str | None, body: bytes, headers: dict[bytes, bytes], call: Call
) -> Reply:
    """POST /v2/models/{name}[/versions/{v}]/infer; the body's `id` (when sent) becomes the request id."""
    model = app.lookup(name, version)
    req, arrays, rows = decode(model, body, headers.get(b"inference-header-content-length"), bare=True)
    if "id" in req:
        call.request_id = checked(req["id"], "the request's 'id'")
    primary = model
    if version is None:
        model = app.choose(primary, call.request_id)
        if model is not primary and model.package.inputs != primary.package.inputs:
            rows = None  # checked against the primary's signature: check again against the canary's
    wanted = _requested(req, model)
    if (
        isinstance(arrays, ColumnFeed)
        and not arrays
        and not (model is primary and rows is not None and app.runs_alone(model, rows))
    ):  # a canary, the batcher's queue, a shadow or the request log read the inputs by name: give them the views
        arrays = ColumnFeed(arrays.order, arrays.matrix)
    outputs = await app.predict(model, arrays, "v2", call.request_id, rows)
    return encode_response(req, model, outputs, wanted, call.request_id)


def route(app: ServeApp, method: str, rest: str) -> tuple[str, str | None, str]:
    """Split the part after /v2/models/ into (model, version, action: '' | 'ready' | 'infer')."""
    parts = rest.split("/")
    name, version, action = parts[0], None, ""
    tail = parts[1:]
    if len(tail) >= 2 and tail[0] == "versions":
        version, tail = tail[1], tail[2:]
    if len(tail) == 1 and tail[0] in ("ready", "infer"):
        action = tail[0]
    elif tail:
        raise HTTPError(404, f"no route /v2/models/{rest}; use /v2/models/NAME[/versions/V][/ready|/infer]")
    check_method(method, "POST" if action == "infer" else "GET")
    return name, version, action
