"""TensorFlow Serving REST API: :predict in row ("instances") and columnar ("inputs") format, model status."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from roost.errors import RoostError
from roost.serve.codec import HTTPError, bad, check_method, columns
from roost.serve.features import entity_spec, request_spec
from roost.serve.loader import ModelSpec
from roost.serve.signature import TensorSpec

if TYPE_CHECKING:
    from roost.serve.app import ServeApp
    from roost.serve.loader import LoadedModel

JSON = b"application/json"
_LABEL = re.compile(r"[A-Za-z0-9][\w.\-]{0,127}\Z")  # what a registry alias may be
Reply = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]


def status(model: LoadedModel) -> dict[str, Any]:
    """GET /v1/models/{name}: the TF-Serving model status document."""
    return {
        "model_version_status": [
            {"version": model.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def metadata(model: LoadedModel) -> dict[str, Any]:
    """GET /v1/models/{name}/metadata: model spec plus a signature_def built from signature.json."""

    def tensors(specs: list[TensorSpec]) -> dict[str, Any]:
        return {
            s.name: {"dtype": s.dtype, "tensor_shape": {"dim": [{"size": str(d)} for d in s.shape]}, "name": s.name}
            for s in specs
        }

    pkg = model.package
    return {
        "model_spec": {"name": model.name, "signature_name": "", "version": model.version},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": tensors(pkg.inputs),
                        "outputs": tensors(pkg.outputs),
                        "method_name": "predict",
                    }
                }
            }
        },
    }


def _unwrap_b64(values: Any, name: str) -> Any:
    """TF-Serving's JSON form of bytes, {"b64": "<base64>"}, → the UTF-8 text it encodes (string inputs hold text)."""
    if not isinstance(values, list):
        return _unwrap_b64([values], name)[0] if values.__class__ is dict else values
    if not any(v.__class__ is dict for v in values):
        return values
    out = []
    for i, v in enumerate(values):
        if v.__class__ is dict:
            if len(v) != 1 or v.get("b64").__class__ is not str:
                raise bad(f'input {name!r}: value {i} is an object; the only object accepted is {{"b64": "<base64>"}}')
            try:
                v = base64.b64decode(v["b64"], validate=True).decode("utf-8")
            except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                raise bad(f"input {name!r}: value {i} is not valid base64 of UTF-8 text") from None
        out.append(v)
    return out


def _convert(model: LoadedModel, cols: dict[str, Any]) -> dict[str, np.ndarray]:
    """Columns of JSON values → arrays of the signature dtypes (entity ids allowed when the model has them)."""
    pkg = model.package
    items = []
    for name, values in cols.items():
        spec = pkg.input(name)
        if spec is None:
            if name in pkg.request_fields:
                spec = request_spec(name, pkg.request_fields[name])
            elif name not in pkg.entities:
                names = ", ".join(repr(s.name) for s in pkg.inputs[:8])
                raise bad(
                    f"unknown input {name!r}; the model's inputs are {names}{' ...' if len(pkg.inputs) > 8 else ''}"
                )
            else:
                spec = entity_spec(name, values)
        elif spec.dtype == "string":
            values = _unwrap_b64(values, name)
        items.append((spec, values))
    return dict(zip(cols, columns(items)))


def _is_value(obj: Any, model: LoadedModel) -> bool:
    """Whether a JSON object is one value of a one-input model (its binary form {"b64": ...}), not named inputs.

    TF-Serving reads an object holding only a "b64" string as a value; roost also reads a "b64" object with a bad
    payload or extra keys as a (bad) value when it does not name the model's input, so the 400 names the input.
    """
    inputs = model.package.inputs
    return len(inputs) == 1 and obj.__class__ is dict and "b64" in obj and inputs[0].name not in obj


def _rows_to_columns(model: LoadedModel, rows: list[Any]) -> dict[str, list[Any]]:
    """The "instances" row format → one list per input (rows of a one-input model may be bare values)."""
    if not rows:
        raise bad("'instances' is empty")
    first = rows[0]
    if not isinstance(first, dict) or _is_value(first, model):
        if len(model.package.inputs) == 1:
            return {model.package.inputs[0].name: rows}
        raise bad(f"each instance must be an object {{input: value}}: the model has {len(model.package.inputs)} inputs")
    keys = list(first)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad(f"instance {i} is not an object like instance 0")
        if len(row) != len(keys) or any(k not in row for k in keys):
            diff = sorted(set(keys) ^ set(row))
            raise bad(f"instance {i} has different inputs than instance 0 (differ in {', '.join(map(repr, diff[:5]))})")
    return {k: [row[k] for row in rows] for k in keys}


def _parse(model: LoadedModel, body: bytes) -> tuple[bool, dict[str, np.ndarray]]:
    """Parse a :predict body; returns (row format?, input arrays)."""
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad(f"request body is not valid JSON: {exc}") from None
    if not isinstance(req, dict):
        raise bad("request body must be a JSON object with 'instances' or 'inputs'")
    sig = req.get("signature_name")
    if sig not in (None, "", "serving_default"):
        raise bad(f"unknown signature_name {sig!r}; this model has only 'serving_default'")
    if ("instances" in req) == ("inputs" in req):
        raise bad("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    if "instances" in req:
        rows = req["instances"]
        if not isinstance(rows, list):
            raise bad("'instances' must be a list of rows")
        return True, _convert(model, _rows_to_columns(model, rows))
    cols = req["inputs"]
    if not isinstance(cols, dict) or _is_value(cols, model):
        if len(model.package.inputs) != 1:
            raise bad(
                f"'inputs' must be an object {{input: [values]}}: the model has {len(model.package.inputs)} inputs"
            )
        cols = {model.package.inputs[0].name: cols}
    return False, _convert(model, cols)


def encode(model: LoadedModel, outputs: dict[str, np.ndarray], row_format: bool) -> bytes:
    """Row format → {"predictions": [...]}; columnar → {"outputs": ...} (one output: bare values)."""
    names = [s.name for s in model.package.outputs]
    opt = orjson.OPT_SERIALIZE_NUMPY
    if len(names) == 1:
        arr = np.ascontiguousarray(outputs[names[0]])
        return orjson.dumps({"predictions" if row_format else "outputs": arr}, option=opt)
    if not row_format:
        return orjson.dumps({"outputs": {n: np.ascontiguousarray(outputs[n]) for n in names}}, option=opt)
    lists = [outputs[n].tolist() for n in names]
    return orjson.dumps({"predictions": [dict(zip(names, vals)) for vals in zip(*lists)]})


def _registry_name(spec: ModelSpec) -> str | None:
    """The registry model a served spec comes from (None for a package folder)."""
    if spec.kind == "alias":
        return spec.source.split("@", 1)[0]
    if spec.kind == "version":
        return spec.source.rsplit("/", 1)[0]
    return spec.source if spec.kind == "latest" else None


async def by_label(app: ServeApp, model: LoadedModel, label: str) -> LoadedModel:
    """The loaded model a TF-Serving version label names: the primary or canary served from that registry alias,
    else the loaded version (primary or canary) the alias points at now; a 404 when it points elsewhere."""
    canary = app.repo.canary(model.name)
    loaded = [model] if canary is None else [model, canary[0]]
    for m in loaded:
        spec = m.resolved.spec
        if spec.kind == "alias" and spec.source.split("@", 1)[1] == label:
            return m
    registry = _registry_name(model.resolved.spec)
    if registry is None or not _LABEL.match(label):
        raise HTTPError(
            404,
            f"model {model.name!r} is not served under label {label!r}; it is served from "
            f"{model.describe()['source']!r}",
        )
    from roost.serve.loader import current_version

    alias = ModelSpec(model.name, f"{registry}@{label}", "alias")
    try:
        target = await asyncio.get_running_loop().run_in_executor(None, current_version, alias)
    except RoostError:
        raise HTTPError(404, f"model {model.name!r} has no label {label!r} in the registry") from None
    for m in loaded:
        if m.version == target:
            return m
    served = " and ".join(m.version for m in loaded)
    raise HTTPError(
        404,
        f"label {label!r} of model {model.name!r} points at version {target}, which is not loaded (serving {served})",
    )


async def predict(
    app: ServeApp, name: str, version: str | None, label: str | None, body: bytes, request_id: str | None = None
) -> Reply:
    """POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict (the id is the X-Request-Id, sent or generated)."""
    model = app.lookup(name, version)
    if label is not None:
        model = await by_label(app, model, label)
    row_format, arrays = _parse(model, body)
    if version is None and label is None and request_id:
        model = app.choose(model, request_id)  # a canary takes its share of unpinned requests
    outputs = await app.predict(model, arrays, "tfserving", request_id)
    return 200, encode(model, outputs, row_format), JSON, []


def route(method: str, rest: str) -> tuple[str, str | None, str | None, str]:
    """Split the part after /v1/models/ into (model, version, label, action: '' | 'predict' | 'metadata')."""
    action = ""
    if ":" in rest:
        rest, verb = rest.rsplit(":", 1)
        if verb != "predict":
            raise HTTPError(
                404 if verb not in ("classify", "regress") else 400, f"':{verb}' is not supported; use ':predict'"
            )
        action = "predict"
    parts = rest.split("/")
    name, version, label = parts[0], None, None
    tail = parts[1:]
    if len(tail) >= 2 and tail[0] in ("versions", "labels"):
        if tail[0] == "versions":
            version = tail[1]
        else:
            label = tail[1]
        tail = tail[2:]
    if tail == ["metadata"] and not action:
        action = "metadata"
    elif tail:
        raise HTTPError(404, f"no route /v1/models/{rest}; use /v1/models/NAME[/versions/V]:predict")
    check_method(method, "POST" if action == "predict" else "GET")
    return name, version, label, action
