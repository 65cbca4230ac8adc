"""The OpenAPI 3 document of a roost server, built from a dict and the models it serves (GET /openapi.json)."""

from __future__ import annotations

from typing import Any

from roost.serve.codec import MAX_ELEMENTS, MAX_RANK
from roost.serve.repository import Repository

REF = "#/components/schemas/"


def _err(desc: str) -> dict[str, Any]:
    """A documented error response with the {"error": message} body."""
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": REF + "Error"}}}}


def _ok(schema: str, desc: str = "OK", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A documented JSON success response."""
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": REF + schema}}}
    content.update(extra or {})
    return {"description": desc, "content": content}


def _params(version: bool, names: list[str]) -> list[dict[str, Any]]:
    """The model_name (one of the served names) and model_version path parameters."""
    out = [{"name": "model_name", "in": "path", "required": True, "schema": {"type": "string", "enum": names}}]
    if version:
        out.append({"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}})
    return out


def _get(
    summary: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = (404,)
) -> dict[str, Any]:
    """A GET operation."""
    responses = {"200": ok, **{str(c): _err(_REASONS[c]) for c in errors}}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    return {"get": op}


def _post(summary: str, body: str, ok: dict[str, Any], params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A POST operation taking a JSON body."""
    return {
        "post": {
            "summary": summary,
            "parameters": params or [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": REF + body}}}},
            "responses": {"200": ok, **{str(c): _err(_REASONS[c]) for c in (400, 404, 413, 415, 503)}},
        }
    }


_REASONS = {
    400: "Bad request (or a Host header outside the allow-list): the message names the problem",
    401: "Missing or wrong bearer token",
    403: "Admin endpoint called from a non-local client on a server without --token",
    404: "Unknown model, version or route",
    405: "Method not allowed",
    413: "Body over the size limit",
    415: "Unsupported Content-Encoding",
    503: "Not ready, or model swapped mid-request (retry)",
}


def _schemas(input_names: list[str], output_names: list[str]) -> dict[str, Any]:
    """Component schemas of the V2 and TF-Serving bodies."""
    # null = a missing value (NaN / -1 / ""; refused for BOOL), see docs/serving.md
    scalar = {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}], "nullable": True}
    name_schema: dict[str, Any] = {"type": "string"}
    if input_names:
        name_schema = {"type": "string", "enum": input_names}
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Tensor": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                "name": name_schema,
                "datatype": {"type": "string", "enum": ["BOOL", "INT32", "INT64", "FP32", "FP64", "BYTES"]},
                "shape": {
                    "type": "array",
                    "maxItems": MAX_RANK,
                    "items": {"type": "integer", "minimum": 0, "maximum": MAX_ELEMENTS},
                    "description": f"at most {MAX_RANK} dimensions whose product is at most {MAX_ELEMENTS} "
                    "and equals the number of values sent",
                },
                "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}},
                "data": {"type": "array", "items": {"oneOf": [scalar, {"type": "array"}]}},
            },
        },
        "RequestedOutput": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "enum": output_names} if output_names else {"type": "string"},
                "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
            },
        },
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}},
                "inputs": {"type": "array", "minItems": 1, "items": {"$ref": REF + "Tensor"}},
                "outputs": {"type": "array", "items": {"$ref": REF + "RequestedOutput"}},
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "datatype", "shape"]}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array"},
                "platform": {"type": "string"},
                "inputs": {"type": "array"},
                "outputs": {"type": "array"},
            },
        },
        "PredictRequest": {
            "type": "object",
            "properties": {
                "signature_name": {"type": "string"},
                "instances": {"type": "array", "items": {"oneOf": [{"type": "object"}, scalar, {"type": "array"}]}},
                "inputs": {"oneOf": [{"type": "object"}, {"type": "array"}]},
            },
        },
        "PredictResponse": {"type": "object", "properties": {"predictions": {"type": "array"}, "outputs": {}}},
        "ModelStatus": {
            "type": "object",
            "required": ["model_version_status"],
            "properties": {"model_version_status": {"type": "array"}},
        },
        "Status": {"type": "object"},
    }


def build(repo: Repository) -> dict[str, Any]:
    """The OpenAPI 3.0 document for this server's endpoints and its models' inputs/outputs."""
    inputs = sorted(
        {s.name for slot in repo.slots.values() for s in slot.current.package.inputs}
        | {e for slot in repo.slots.values() for e in slot.current.package.entities}
    )
    outputs = sorted({s.name for slot in repo.slots.values() for s in slot.current.package.outputs})
    names = repo.names
    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    infer_ok = _ok("InferenceResponse", "Outputs (binary tensors follow the JSON when requested)", binary)
    status = {"description": "OK", "content": {"application/json": {"schema": {"$ref": REF + "Status"}}}}
    paths: dict[str, Any] = {
        "/v2/health/live": _get("Server is live", status, errors=()),
        "/v2/health/ready": _get("Server is ready", status, errors=(503,)),
        "/v2": _get("Server metadata", status, errors=()),
        "/v2/models/{model_name}": _get("Model metadata", _ok("ModelMetadata"), _params(False, names)),
        "/v2/models/{model_name}/ready": _get("Model ready", status, _params(False, names)),
        "/v2/models/{model_name}/versions/{model_version}": _get(
            "Model metadata", _ok("ModelMetadata"), _params(True, names)
        ),
        "/v2/models/{model_name}/versions/{model_version}/ready": _get(
            "Model version ready", status, _params(True, names)
        ),
        "/v2/models/{model_name}/infer": _post(
            "Inference (KServe V2)", "InferenceRequest", infer_ok, _params(False, names)
        ),
        "/v2/models/{model_name}/versions/{model_version}/infer": _post(
            "Inference on a version (KServe V2)", "InferenceRequest", infer_ok, _params(True, names)
        ),
        "/v1/models/{model_name}": _get("Model status (TF-Serving)", _ok("ModelStatus"), _params(False, names)),
        "/v1/models/{model_name}/versions/{model_version}": _get(
            "Model version status (TF-Serving)", _ok("ModelStatus"), _params(True, names)
        ),
        "/v1/models/{model_name}/metadata": _get("Model metadata (TF-Serving)", status, _params(False, names)),
        "/v1/models/{model_name}:predict": _post(
            "Predict (TF-Serving REST)", "PredictRequest", _ok("PredictResponse"), _params(False, names)
        ),
        "/v1/models/{model_name}/versions/{model_version}:predict": _post(
            "Predict on a version (TF-Serving REST)", "PredictRequest", _ok("PredictResponse"), _params(True, names)
        ),
        "/metrics": _get(
            "Prometheus metrics",
            {"description": "Text exposition format", "content": {"text/plain": {"schema": {"type": "string"}}}},
            errors=(404,),
        ),
        "/admin/status": _get("This worker's models", status, errors=(403,)),
        "/admin/reload": {
            "post": {
                "summary": "Re-resolve models and hot-swap changed ones (whole fleet)",
                "parameters": [
                    {"name": "model", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "force",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["0", "1", "true", "false"]},
                    },
                ],
                "responses": {
                    "200": status,
                    "400": _err(_REASONS[400]),
                    "403": _err(_REASONS[403]),
                    "404": _err(_REASONS[404]),
                },
            }
        },
    }
    for ops in paths.values():
        for op in ops.values():
            op["responses"].setdefault("401", _err(_REASONS[401]))
            op["responses"].setdefault("400", _err(_REASONS[400]))  # Host allow-list
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "roost serve",
            "version": "1",
            "description": "KServe V2 (JSON + binary tensors) and TF-Serving REST inference; models: "
            + ", ".join(repo.names),
        },
        "paths": paths,
        "components": {"schemas": _schemas(inputs, outputs)},
    }
