"""The KServe V2 `grpc_predict_v2.proto` (package `inference`), built as descriptors at import time.

No generated `_pb2.py` and no protoc: the messages below are the public spec's (field names and numbers as in
KServe's grpc_predict_v2.proto, which Triton's grpc_service.proto extends), turned into a FileDescriptorProto and
loaded into a private descriptor pool, so they never clash with another copy of the same package (tritonclient's)
in one process. tests/serve/test_serve_grpc.py checks every field against tritonclient's generated descriptors.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import (  # type: ignore[import-untyped]  # protobuf ships no stubs here
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

PACKAGE = "inference"
SERVICE = "GRPCInferenceService"
FILE = "roost/grpc_predict_v2.proto"

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
}
PARAMS = "map<string,InferParameter>"

# message -> [(field, type, number, "repeated" | "" | oneof name)]; nested messages are named Outer.Inner
MESSAGES: dict[str, list[tuple[str, str, int, str]]] = {
    "ServerLiveRequest": [],
    "ServerLiveResponse": [("live", "bool", 1, "")],
    "ServerReadyRequest": [],
    "ServerReadyResponse": [("ready", "bool", 1, "")],
    "ModelReadyRequest": [("name", "string", 1, ""), ("version", "string", 2, "")],
    "ModelReadyResponse": [("ready", "bool", 1, "")],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [
        ("name", "string", 1, ""),
        ("version", "string", 2, ""),
        ("extensions", "string", 3, "repeated"),
    ],
    "ModelMetadataRequest": [("name", "string", 1, ""), ("version", "string", 2, "")],
    "ModelMetadataResponse.TensorMetadata": [
        ("name", "string", 1, ""),
        ("datatype", "string", 2, ""),
        ("shape", "int64", 3, "repeated"),
    ],
    "ModelMetadataResponse": [
        ("name", "string", 1, ""),
        ("versions", "string", 2, "repeated"),
        ("platform", "string", 3, ""),
        ("inputs", "ModelMetadataResponse.TensorMetadata", 4, "repeated"),
        ("outputs", "ModelMetadataResponse.TensorMetadata", 5, "repeated"),
    ],
    "InferParameter": [
        ("bool_param", "bool", 1, "parameter_choice"),
        ("int64_param", "int64", 2, "parameter_choice"),
        ("string_param", "string", 3, "parameter_choice"),
        ("double_param", "double", 4, "parameter_choice"),
        ("uint64_param", "uint64", 5, "parameter_choice"),
    ],
    "InferTensorContents": [
        ("bool_contents", "bool", 1, "repeated"),
        ("int_contents", "int32", 2, "repeated"),
        ("int64_contents", "int64", 3, "repeated"),
        ("uint_contents", "uint32", 4, "repeated"),
        ("uint64_contents", "uint64", 5, "repeated"),
        ("fp32_contents", "float", 6, "repeated"),
        ("fp64_contents", "double", 7, "repeated"),
        ("bytes_contents", "bytes", 8, "repeated"),
    ],
    "ModelInferRequest.InferInputTensor": [
        ("name", "string", 1, ""),
        ("datatype", "string", 2, ""),
        ("shape", "int64", 3, "repeated"),
        ("parameters", PARAMS, 4, ""),
        ("contents", "InferTensorContents", 5, ""),
    ],
    "ModelInferRequest.InferRequestedOutputTensor": [("name", "string", 1, ""), ("parameters", PARAMS, 2, "")],
    "ModelInferRequest": [
        ("model_name", "string", 1, ""),
        ("model_version", "string", 2, ""),
        ("id", "string", 3, ""),
        ("parameters", PARAMS, 4, ""),
        ("inputs", "ModelInferRequest.InferInputTensor", 5, "repeated"),
        ("outputs", "ModelInferRequest.InferRequestedOutputTensor", 6, "repeated"),
        ("raw_input_contents", "bytes", 7, "repeated"),
    ],
    "ModelInferResponse.InferOutputTensor": [
        ("name", "string", 1, ""),
        ("datatype", "string", 2, ""),
        ("shape", "int64", 3, "repeated"),
        ("parameters", PARAMS, 4, ""),
        ("contents", "InferTensorContents", 5, ""),
    ],
    "ModelInferResponse": [
        ("model_name", "string", 1, ""),
        ("model_version", "string", 2, ""),
        ("id", "string", 3, ""),
        ("parameters", PARAMS, 4, ""),
        ("outputs", "ModelInferResponse.InferOutputTensor", 5, "repeated"),
        ("raw_output_contents", "bytes", 6, "repeated"),
    ],
    # Triton's streaming answer (grpc_service.proto): one per request of the stream, an answer or an error
    "ModelStreamInferResponse": [
        ("error_message", "string", 1, ""),
        ("infer_response", "ModelInferResponse", 2, ""),
    ],
}
# unary rpc -> (request message, response message)
RPCS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}
# bidirectional streaming rpc -> (request message, response message)
STREAM_RPCS = {"ModelStreamInfer": ("ModelInferRequest", "ModelStreamInferResponse")}


def _fill(msg: descriptor_pb2.DescriptorProto, scope: str, fields: list[tuple[str, str, int, str]]) -> None:
    """Add `fields` to the message descriptor of `scope` (map fields get their nested XxxEntry message)."""
    oneofs: dict[str, int] = {}
    for name, kind, number, mode in fields:
        f = msg.field.add(name=name, number=number, json_name=name)
        f.label = _F.LABEL_REPEATED if mode == "repeated" or kind == PARAMS else _F.LABEL_OPTIONAL
        if kind == PARAMS:
            entry = msg.nested_type.add(name="".join(p.capitalize() for p in name.split("_")) + "Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL, json_name="key")
            entry.field.add(
                name="value", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL, json_name="value"
            ).type_name = f".{PACKAGE}.InferParameter"
            f.type, f.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{scope}.{entry.name}"
        elif kind in _SCALARS:
            f.type = _SCALARS[kind]
        else:
            f.type, f.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
        if mode not in ("", "repeated"):
            if mode not in oneofs:
                oneofs[mode] = len(msg.oneof_decl)
                msg.oneof_decl.add(name=mode)
            f.oneof_index = oneofs[mode]


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of the KServe V2 gRPC API."""
    fd = descriptor_pb2.FileDescriptorProto(name=FILE, package=PACKAGE, syntax="proto3")
    tops: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full in MESSAGES:
        outer = full.split(".")[0]
        if outer not in tops:
            tops[outer] = fd.message_type.add(name=outer)
    for full, fields in MESSAGES.items():
        outer, _, inner = full.partition(".")
        _fill(tops[outer].nested_type.add(name=inner) if inner else tops[outer], full, fields)
    svc = fd.service.add(name=SERVICE)
    for rpc, (req, resp) in RPCS.items():
        svc.method.add(name=rpc, input_type=f".{PACKAGE}.{req}", output_type=f".{PACKAGE}.{resp}")
    for rpc, (req, resp) in STREAM_RPCS.items():
        svc.method.add(
            name=rpc,
            input_type=f".{PACKAGE}.{req}",
            output_type=f".{PACKAGE}.{resp}",
            client_streaming=True,
            server_streaming=True,
        )
    return fd


def _build() -> dict[str, Any]:
    """Message classes by name (nested ones as Outer.Inner), from a private pool."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in MESSAGES}


_CLASSES = _build()


def message(name: str) -> Any:
    """The message class called `name` (e.g. "ModelInferRequest")."""
    return _CLASSES[name]
