"""Hostile KServe V2 gRPC requests (raw channels and the stock tritonclient.grpc): every one is answered
INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED with a message — never INTERNAL/UNKNOWN — and the worker lives."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tg
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
from servekit import Server, free_port, mixed_package
from tritonclient.utils import InferenceServerException

INVALID, NOT_FOUND, EXHAUSTED = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
LONG = 60_000  # a name longer than gRPC's default 16 KiB limit on the metadata a client accepts


@pytest.fixture(scope="module")
def grpc_server(pkgs, tmp_path_factory):
    """One worker serving strings, bc and mixed (one input per dtype) over HTTP and gRPC, 1 MB message limit."""
    port = free_port()
    mixed = mixed_package(tmp_path_factory.mktemp("mixed") / "mixed")
    srv = Server(
        [f"strings={pkgs['strings']}", str(pkgs["bc"]), f"mixed={mixed}"],
        "--grpc-port",
        str(port),
        "--max-body-mb",
        "1",
        log=tmp_path_factory.mktemp("grpc-hostile") / "server.log",
    )
    try:
        srv.wait_ready()
        srv.grpc_url = f"127.0.0.1:{port}"
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def grpc_url(grpc_server):
    return grpc_server.grpc_url


@pytest.fixture(scope="module")
def channel(grpc_url):
    with grpc.insecure_channel(grpc_url) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel):
    return pbg.GRPCInferenceServiceStub(channel)


def _typed(name, datatype, shape, field, values):
    t = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    getattr(t.contents, field).extend(values)
    return t


def _req(x=(1.0, 2.0), words=(b"a", b"c"), shape=None, **kw):
    return pb.ModelInferRequest(
        model_name=kw.pop("model_name", "strings"),
        inputs=[
            _typed("x", "FP32", shape or [len(x)], "fp32_contents", x),
            _typed("country", "BYTES", [len(words)], "bytes_contents", words),
        ],
        **kw,
    )


def _raw(req, *blobs):
    for t in req.inputs:
        t.ClearField("contents")
    req.raw_input_contents.extend(blobs)
    return req


def _assert_alive(stub):
    out = stub.ModelInfer(_req(), timeout=60)
    assert np.frombuffer(out.raw_output_contents[0], "<f4").tolist() == [2.0, 5.0]


def _code(fn, *args):
    with pytest.raises(grpc.RpcError) as exc:
        fn(*args, timeout=60)
    return exc.value.code(), exc.value.details()


GARBAGE = {
    "invalid varint": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    "truncated varint": b"\x0a\x80",
    "end-group wire type": b"\x0c",
    "length past the end": b"\x2a\x7f\x00",
    "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)),
}


@pytest.mark.parametrize("rpc", ["ModelInfer", "ModelMetadata", "ModelReady", "ServerLive"])
@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_bytes_that_are_not_protobuf_are_invalid_argument(channel, stub, rpc, case):
    """gRPC's own deserializer error was UNKNOWN ('Unexpected DecodeError') with a traceback in the log."""
    call = channel.unary_unary(
        f"/inference.GRPCInferenceService/{rpc}", request_serializer=bytes, response_deserializer=bytes
    )
    code, details = _code(call, GARBAGE[case])
    assert code == INVALID, (code, details)
    assert "protobuf" in details and rpc.removeprefix("Model").removeprefix("Server") in details
    _assert_alive(stub)


def _named(field):
    """Requests that carry a LONG string in `field` somewhere the server quotes it back."""
    big = "n" * LONG
    if field == "model_name":
        return _req(model_name=big)
    if field == "model_version":
        return _req(model_version=big)
    if field == "input name":
        return pb.ModelInferRequest(
            model_name="strings", inputs=[_typed(big, "FP32", [2], "fp32_contents", [1.0, 2.0]), _req().inputs[1]]
        )
    if field == "datatype":
        return pb.ModelInferRequest(
            model_name="strings", inputs=[_typed("x", big, [2], "fp32_contents", [1.0, 2.0]), _req().inputs[1]]
        )
    req = _req()
    req.outputs.add(name=big)
    return req


@pytest.mark.parametrize(
    ("field", "want"),
    [
        ("model_name", NOT_FOUND),
        ("model_version", NOT_FOUND),
        ("input name", INVALID),
        ("datatype", INVALID),
        ("output name", INVALID),
    ],
)
def test_long_names_get_the_servers_answer_not_a_metadata_overflow(stub, field, want):
    """The message quoted the 60 kB name back: a client then refuses the trailers (RESOURCE_EXHAUSTED 'received
    metadata size exceeds hard limit'), so the user never sees what was wrong."""
    code, details = _code(stub.ModelInfer, _named(field))
    assert code == want, (code, details[:200])
    assert len(details) < 4096 and "nnnn" in details
    _assert_alive(stub)


def test_metadata_and_ready_of_long_or_odd_names(stub, grpc_url):
    for call, req in [
        (stub.ModelMetadata, pb.ModelMetadataRequest(name="q" * LONG)),
        (stub.ModelReady, pb.ModelReadyRequest(name="q" * LONG)),
        (stub.ModelMetadata, pb.ModelMetadataRequest(name="strings", version="v" * LONG)),
    ]:
        code, details = _code(call, req)
        assert code == NOT_FOUND and ("qqqq" in details or "vvvv" in details), (code, details[:200])
    for name in ["../../etc/passwd", "\x00\n\u202e", ""]:
        code, details = _code(stub.ModelMetadata, pb.ModelMetadataRequest(name=name))
        assert code == NOT_FOUND and "'strings'" in details
    code, details = _code(stub.ModelReady, pb.ModelReadyRequest(name="strings", version="2"))
    assert code == NOT_FOUND and "version '2' is not loaded" in details
    client = tg.InferenceServerClient(grpc_url)
    try:
        with pytest.raises(InferenceServerException) as exc:
            client.get_model_metadata("m" * LONG)
        assert exc.value.status() == "StatusCode.NOT_FOUND", exc.value.message()[:200]
        inp = tg.InferInput("x" * LONG, [1], "FP32")
        inp.set_data_from_numpy(np.zeros(1, np.float32))
        with pytest.raises(InferenceServerException) as exc:
            client.infer("strings", [inp])
        assert exc.value.status() == "StatusCode.INVALID_ARGUMENT", exc.value.message()[:200]
    finally:
        client.close()


HOSTILE = {
    "shape product overflows int64": (_req(shape=[2**32, 2**32]), INVALID, "more than"),
    "shape of huge dims": (_req(shape=[2**62, 4]), INVALID, "more than"),
    "zero rows": (_req(x=(), words=(), shape=[0]), INVALID, "0 rows"),
    "zero-size 2-D": (_req(x=(), words=(), shape=[0, 0]), INVALID, "shape [0, 0]"),
    "negative dim": (_req(shape=[-1]), INVALID, "non-negative"),
    "unknown datatype": (
        pb.ModelInferRequest(
            model_name="strings", inputs=[_typed("x", "FOO", [2], "fp32_contents", [1.0, 2.0]), _req().inputs[1]]
        ),
        INVALID,
        "datatype FOO",
    ),
    "raw size != shape x dtype": (_raw(_req(), b"\0" * 9, b"\1\0\0\0a\1\0\0\0b"), INVALID, "binary_data_size"),
    "raw and typed both": (
        pb.ModelInferRequest(model_name="strings", inputs=_req().inputs, raw_input_contents=[b"\0" * 8, b"x"]),
        INVALID,
        "both",
    ),
    "BYTES prefix 0xffffffff": (_raw(_req(), b"\0" * 8, b"\xff\xff\xff\xffa"), INVALID, "country"),
    "BYTES prefix cut short": (_raw(_req(), b"\0" * 8, b"\1\0"), INVALID, "country"),
    "BYTES bytes after the last": (_raw(_req(), b"\0" * 8, b"\1\0\0\0a\1\0\0\0bzz"), INVALID, "extra bytes"),
    "duplicate input": (
        pb.ModelInferRequest(model_name="strings", inputs=[*_req().inputs, _req().inputs[0]]),
        INVALID,
        "twice",
    ),
    "unknown output": (_req(outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="nope")]), INVALID, "'nope'"),
    "version not loaded": (_req(model_version="99"), NOT_FOUND, "'99' is not loaded"),
    "odd model name": (_req(model_name="../x\x00\u202e"), NOT_FOUND, "not served here"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_infer_requests(stub, case):
    req, want, words = HOSTILE[case]
    code, details = _code(stub.ModelInfer, req)
    assert code == want and words in details, (code, details)


def test_parameters_of_odd_types_are_ignored_like_kserve(stub):
    """Unknown request, input and output parameters of any type are ignored (KServe and Triton ignore them)."""
    req = _req()
    req.parameters["binary_data_output"].string_param = "\u00e9" * 100
    req.parameters["sequence_id"].uint64_param = 2**64 - 1
    req.parameters["priority"].double_param = float("nan")
    req.parameters["empty"].SetInParent()
    req.inputs[0].parameters["binary_data_size"].int64_param = -5
    req.outputs.add(name="prediction").parameters["classification"].bool_param = True
    out = stub.ModelInfer(req, timeout=60)
    assert np.frombuffer(out.raw_output_contents[0], "<f4").tolist() == [2.0, 5.0]


def test_message_over_the_limit_then_still_serving(stub):
    big = _req(x=[0.0] * 200_000, words=[b"a"] * 200_000)
    code, details = _code(stub.ModelInfer, big)
    assert code == EXHAUSTED and "larger than max" in details
    _assert_alive(stub)


MIXED = [("f", "FP32", "<f4"), ("d", "FP64", "<f8"), ("i", "INT64", "<i8"), ("b", "BOOL", "|u1"), ("s", "BYTES", None)]


def _mixed_blobs(b: bytes) -> list[bytes]:
    """Raw tensors of 2 rows for the mixed model: f = [1, 2], d = [10, 20], i = [100, 200], b = `b`, s = [a, z]."""
    values = {"f": [1, 2], "d": [10, 20], "i": [100, 200]}
    out = []
    for name, _, dt in MIXED:
        if name == "b":
            out.append(b)
        elif name == "s":
            out.append(b"\1\0\0\0a\1\0\0\0z")
        else:
            out.append(np.array(values[name], dt).tobytes())
    return out


def _mixed_grpc(b: bytes):
    req = pb.ModelInferRequest(model_name="mixed")
    for name, datatype, _ in MIXED:
        req.inputs.add(name=name, datatype=datatype, shape=[2])
    req.raw_input_contents.extend(_mixed_blobs(b))
    return req


def _mixed_http(server, b: bytes):
    blobs = _mixed_blobs(b)
    head = {
        "inputs": [
            {"name": n, "datatype": d, "shape": [2], "parameters": {"binary_data_size": len(blob)}}
            for (n, d, _), blob in zip(MIXED, blobs)
        ]
    }
    header = json.dumps(head).encode()
    with server.client() as http:
        return http.post(
            "/v2/models/mixed/infer",
            content=header + b"".join(blobs),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )


@pytest.mark.parametrize("b", [b"\x02\x01", b"\x00\xff"])
def test_binary_bool_bytes_other_than_0_and_1_are_refused(stub, grpc_server, b):
    """A BOOL byte of 2 or 255 reached the model as a numpy bool holding that byte: Cast(bool -> float) answered
    y = ... + 2 (or + 255) where a boolean adds 0 or 1. Refused on gRPC and on the HTTP binary extension alike."""
    code, details = _code(stub.ModelInfer, _mixed_grpc(b))
    assert code == INVALID and "'b'" in details and "0 or 1" in details, (code, details)
    r = _mixed_http(grpc_server, b)
    assert r.status_code == 400 and r.json()["error"] == details


def test_binary_bool_bytes_0_and_1_answer_the_sum(stub, grpc_server):
    # y = f + d + i + b + code(s), code(a) = 1, code(z) = 0
    want = [1 + 10 + 100 + 1 + 1, 2 + 20 + 200 + 0 + 0]
    out = stub.ModelInfer(_mixed_grpc(b"\x01\x00"), timeout=60)
    assert np.frombuffer(out.raw_output_contents[0], "<f4").tolist() == want
    r = _mixed_http(grpc_server, b"\x01\x00")
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == want


def _grpc_400s(server) -> float:
    """roost_requests_total{protocol="grpc", code="400"} summed over models, from /metrics."""
    with server.client() as http:
        text = http.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("roost_requests_total{") and 'protocol="grpc"' in line and 'code="400"' in line
    )


def test_malformed_bytes_count_as_a_grpc_400_in_metrics(channel, grpc_server):
    call = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer", request_serializer=bytes, response_deserializer=bytes
    )
    before = _grpc_400s(grpc_server)
    for _ in range(3):
        assert _code(call, GARBAGE["truncated varint"])[0] == INVALID
    assert _grpc_400s(grpc_server) == before + 3


def test_malformed_bytes_without_the_token_are_unauthenticated(pkgs, tmp_path):
    """With --token, a caller without it learns nothing beyond UNAUTHENTICATED, whatever bytes it sends."""
    port = free_port()
    srv = Server([f"strings={pkgs['strings']}"], "--grpc-port", str(port), "--token", "s3cret", log=tmp_path / "log")
    try:
        srv.wait_ready()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            call = ch.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer", request_serializer=bytes, response_deserializer=bytes
            )
            assert _code(call, GARBAGE["random bytes"])[0] == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as exc:
                call(GARBAGE["random bytes"], timeout=60, metadata=[("authorization", "Bearer s3cret")])
            assert exc.value.code() == INVALID and "protobuf" in exc.value.details()
    finally:
        srv.stop()


@pytest.mark.parametrize("rpc", ["ModelInfer", "ModelMetadata", "ModelReady"])
def test_a_name_that_is_not_utf8_is_invalid_argument(channel, stub, rpc):
    """Field 1 (model_name / name) holding the bytes ff fe: protobuf refuses a string that is not UTF-8."""
    call = channel.unary_unary(
        f"/inference.GRPCInferenceService/{rpc}", request_serializer=bytes, response_deserializer=bytes
    )
    code, details = _code(call, b"\x0a\x02\xff\xfe")
    assert code == INVALID and "protobuf" in details, (code, details)
    _assert_alive(stub)
