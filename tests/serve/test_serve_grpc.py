"""KServe V2 over gRPC (--grpc-port): the stock tritonclient.grpc against the same workers as HTTP; hostile requests."""

from __future__ import annotations

import os
import signal
import socket
import time

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tg
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
import tritonclient.http as th
from servekit import Server, free_port
from tritonclient.utils import InferenceServerException

from roost.serve.codec import MAX_ELEMENTS
from roost.serve.grpc import proto


@pytest.fixture(scope="module")
def grpc_server(pkgs, tmp_path_factory):
    """2 workers serving bc, iris and strings over HTTP and gRPC."""
    port = free_port()
    srv = Server(
        [str(pkgs["bc"]), str(pkgs["iris"]), f"strings={pkgs['strings']}"],
        "--replicas",
        "2",
        "--grpc-port",
        str(port),
        log=tmp_path_factory.mktemp("grpc") / "server.log",
    )
    srv.grpc_url = f"127.0.0.1:{port}"
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def clients(grpc_server):
    g = tg.InferenceServerClient(grpc_server.grpc_url)
    h = th.InferenceServerClient(grpc_server.url.removeprefix("http://"))
    yield g, h
    g.close()
    h.close()


@pytest.fixture(scope="module")
def stub(grpc_server):
    """The stock generated stub (tritonclient's copy of the proto) for hand-built requests."""
    with grpc.insecure_channel(grpc_server.grpc_url) as channel:
        yield pbg.GRPCInferenceServiceStub(channel)


def test_proto_fields_match_tritonclient():
    """Every field roost declares has the number, type and cardinality of Triton's generated descriptor."""
    ours = proto.file_descriptor()
    by_name = {m.name: m for m in ours.message_type}
    checked = 0
    for full, fields in proto.MESSAGES.items():
        outer, _, inner = full.partition(".")
        theirs = getattr(pb, outer).DESCRIPTOR
        if inner:
            theirs = theirs.nested_types_by_name[inner]
        mine = by_name[outer] if not inner else next(n for n in by_name[outer].nested_type if n.name == inner)
        assert {f.name for f in mine.field} == {f[0] for f in fields}
        for f in mine.field:
            t = theirs.fields_by_name[f.name]
            repeated = f.label == f.LABEL_REPEATED
            assert (f.number, f.type, repeated) == (t.number, t.type, t.is_repeated), f"{full}.{f.name}"
            if f.type_name:
                assert f.type_name.rsplit(".", 1)[1] == t.message_type.name, f"{full}.{f.name}"
            checked += 1
    assert checked > 50
    svc = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for rpc, (req, resp) in proto.RPCS.items():
        m = svc.methods_by_name[rpc]
        assert (m.input_type.name, m.output_type.name) == (req, resp)


def _pair(cols, X, binary_http=True):
    """The same inputs for tritonclient.grpc and tritonclient.http."""
    gi, hi = [], []
    for i, c in enumerate(cols):
        col = np.ascontiguousarray(X[:, i])
        a, b = tg.InferInput(c, [len(X)], "FP32"), th.InferInput(c, [len(X)], "FP32")
        a.set_data_from_numpy(col)
        b.set_data_from_numpy(col, binary_data=binary_http)
        gi.append(a)
        hi.append(b)
    return gi, hi


def test_infer_equals_http_and_onnxruntime(clients, pkgs, bc_data):
    g, h = clients
    X, _, cols = bc_data
    X = X[:64]
    gi, hi = _pair(cols, X)
    got = g.infer("bc", gi, request_id="abc").as_numpy("probability")
    via_http = h.infer("bc", hi).as_numpy("probability")
    ref = ort.InferenceSession(str(pkgs["bc"] / "model.onnx")).run(None, {c: X[:, i] for i, c in enumerate(cols)})[0]
    assert got.dtype == np.float32 and got.shape == (64,)
    np.testing.assert_array_equal(got, via_http)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)
    assert g.infer("bc", gi, request_id="abc").get_response().id == "abc"


def test_multiclass_2d_and_bytes_equal_http(clients):
    g, h = clients
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 7, size=(9, 4)).astype(np.float32)
    cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    gi, hi = _pair(cols, X)
    a, b = g.infer("iris", gi).as_numpy("probabilities"), h.infer("iris", hi).as_numpy("probabilities")
    assert a.shape == (9, 3)
    np.testing.assert_array_equal(a, b)
    words = np.array(["a", "b", "c", "zz", "é"], dtype=object)
    x = np.arange(5, dtype=np.float32)
    gi = [tg.InferInput("x", [5], "FP32"), tg.InferInput("country", [5], "BYTES")]
    gi[0].set_data_from_numpy(x)
    gi[1].set_data_from_numpy(words)
    out = g.infer("strings", gi, outputs=[tg.InferRequestedOutput("prediction")]).as_numpy("prediction")
    np.testing.assert_array_equal(out, x + np.array([1, 2, 3, 0, 0], dtype=np.float32))


def test_metadata_and_health_equal_http(clients):
    g, h = clients
    assert g.is_server_live() and g.is_server_ready()
    assert g.is_model_ready("bc") and g.is_model_ready("bc", "1")
    for name in ("bc", "iris", "strings"):
        gm, hm = g.get_model_metadata(name), h.get_model_metadata(name)
        assert (gm.name, list(gm.versions), gm.platform) == (hm["name"], hm["versions"], hm["platform"])
        for ours, theirs in ((gm.inputs, hm["inputs"]), (gm.outputs, hm["outputs"])):
            assert [(t.name, t.datatype, list(t.shape)) for t in ours] == [
                (t["name"], t["datatype"], t["shape"]) for t in theirs
            ]
    sm, hs = g.get_server_metadata(), h.get_server_metadata()
    assert (sm.name, sm.version, list(sm.extensions)) == (hs["name"], hs["version"], hs["extensions"])
    with pytest.raises(InferenceServerException) as exc:
        g.get_model_metadata("nope")
    assert exc.value.status() == "StatusCode.NOT_FOUND" and "'bc'" in exc.value.message()
    with pytest.raises(InferenceServerException) as exc:
        g.is_model_ready("bc", "7")
    assert exc.value.status() == "StatusCode.NOT_FOUND"


def _typed(name, datatype, shape, field, values):
    t = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    getattr(t.contents, field).extend(values)
    return t


def _strings_req(x=(1.0, 2.0), words=(b"a", b"c"), shape=None):
    return pb.ModelInferRequest(
        model_name="strings",
        inputs=[
            _typed("x", "FP32", shape or [len(x)], "fp32_contents", x),
            _typed("country", "BYTES", [len(words)], "bytes_contents", words),
        ],
    )


def test_typed_contents_equal_raw(stub, clients):
    """An input sent in InferTensorContents answers exactly what the same values as raw_input_contents do."""
    typed = stub.ModelInfer(_strings_req(x=(0.5, 2.0, -1.0), words=(b"a", b"b", b"q")), timeout=60)
    assert typed.model_name == "strings" and typed.outputs[0].datatype == "FP32"
    got = np.frombuffer(typed.raw_output_contents[0], dtype="<f4")
    np.testing.assert_array_equal(got, np.array([1.5, 4.0, -1.0], dtype=np.float32))
    g, _ = clients
    gi = [tg.InferInput("x", [3], "FP32"), tg.InferInput("country", [3], "BYTES")]
    gi[0].set_data_from_numpy(np.array([0.5, 2.0, -1.0], dtype=np.float32))
    gi[1].set_data_from_numpy(np.array(["a", "b", "q"], dtype=object))
    np.testing.assert_array_equal(g.infer("strings", gi).as_numpy("prediction"), got)


def _raw(req, *blobs):
    for t in req.inputs:
        t.ClearField("contents")
    req.raw_input_contents.extend(blobs)
    return req


HUGE = MAX_ELEMENTS + 1
MALFORMED = {
    "no inputs": (pb.ModelInferRequest(model_name="strings"), "at least one input"),
    "missing input": (
        pb.ModelInferRequest(model_name="strings", inputs=[_typed("x", "FP32", [1], "fp32_contents", [1.0])]),
        "missing input 'country'",
    ),
    "unknown input": (
        pb.ModelInferRequest(
            model_name="strings",
            inputs=[*_strings_req().inputs, _typed("zz", "FP32", [2], "fp32_contents", [1.0, 2.0])],
        ),
        "unknown input 'zz'",
    ),
    "no name": (pb.ModelInferRequest(model_name="strings", inputs=[pb.ModelInferRequest.InferInputTensor()]), "name"),
    "wrong datatype": (
        pb.ModelInferRequest(
            model_name="strings",
            inputs=[_typed("x", "INT64", [2], "int64_contents", [1, 2]), _strings_req().inputs[1]],
        ),
        "expects FP32",
    ),
    "wrong contents field": (
        pb.ModelInferRequest(
            model_name="strings",
            inputs=[_typed("x", "FP32", [2], "fp64_contents", [1.0, 2.0]), _strings_req().inputs[1]],
        ),
        "fp32_contents",
    ),
    "count != shape": (_strings_req(shape=[3]), "needs 3 values"),
    "negative dim": (_strings_req(shape=[-2]), "non-negative"),
    "too many elements": (_strings_req(shape=[HUGE]), "more than"),
    "rank 9": (_strings_req(shape=[1] * 9), "dimensions"),
    "batch disagreement": (_strings_req(x=(1.0, 2.0, 3.0)), "batch size"),
    "duplicate input": (
        pb.ModelInferRequest(model_name="strings", inputs=[*_strings_req().inputs, _strings_req().inputs[0]]),
        "appears twice",
    ),
    "infinite float": (_strings_req(x=(float("inf"), 1.0)), "infinite"),
    "not utf-8": (_strings_req(words=(b"\xff", b"a")), "UTF-8"),
    "raw count": (_raw(_strings_req(), b"\0" * 8), "one per input"),
    "raw size": (_raw(_strings_req(), b"\0" * 7, b"\1\0\0\0a\1\0\0\0b"), "binary_data_size"),
    "raw bytes framing": (_raw(_strings_req(), b"\0" * 8, b"\x09\0\0\0abcd"), "past the end"),
    "raw float inf": (_raw(_strings_req(), np.array([np.inf, 0], "<f4").tobytes(), b"\1\0\0\0a\1\0\0\0b"), "infinite"),
    "raw and contents": (
        pb.ModelInferRequest(model_name="strings", inputs=_strings_req().inputs, raw_input_contents=[b"", b""]),
        "both",
    ),
    "unknown output": (
        pb.ModelInferRequest(
            model_name="strings",
            inputs=_strings_req().inputs,
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="nope")],
        ),
        "unknown output 'nope'",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_are_invalid_argument(stub, case):
    req, words = MALFORMED[case]
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(req, timeout=60)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.value.code(), exc.value.details())
    assert words in exc.value.details()


def test_errors_match_http_and_server_survives(stub, grpc_server, clients):
    """The message is the one the HTTP side gives for the same problem; the workers keep serving."""
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]},
            {"name": "country", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "c"]},
        ]
    }
    with grpc_server.client() as http:
        r = http.post("/v2/models/strings/infer", json=body)
    assert r.status_code == 400
    req = _strings_req(words=(b"a", b"b", b"c"))
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(req, timeout=60)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details() == r.json()["error"]
    with pytest.raises(grpc.RpcError) as exc:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope", inputs=_strings_req().inputs), timeout=60)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert clients[0].is_server_ready()
    assert stub.ModelInfer(_strings_req(), timeout=60).outputs[0].shape == [2]


def test_token_is_required_unless_public(pkgs, tmp_path):
    port = free_port()
    srv = Server([str(pkgs["strings"])], "--grpc-port", str(port), "--token", "s3cret", log=tmp_path / "log")
    try:
        srv.wait_ready()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            s = pbg.GRPCInferenceServiceStub(channel)
            assert s.ServerLive(pb.ServerLiveRequest(), timeout=60).live  # health needs no token, as on HTTP
            with pytest.raises(grpc.RpcError) as exc:
                s.ModelInfer(_strings_req(), timeout=60)
            assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ok = s.ModelInfer(_strings_req(), timeout=60, metadata=[("authorization", "Bearer s3cret")])
            assert ok.outputs[0].name == "prediction"
    finally:
        srv.stop()


def _valid(rng):
    """A valid strings request of 1..3 rows, typed or raw."""
    n = int(rng.integers(1, 4))
    x = [float(v) for v in rng.normal(size=n).astype(np.float32)]
    words = [str(rng.choice(["a", "b", "zz", "é"])).encode() for _ in range(n)]
    req = _strings_req(x=x, words=words)
    if rng.random() < 0.5:
        raw_words = b"".join(len(w).to_bytes(4, "little") + w for w in words)
        _raw(req, np.array(x, "<f4").tobytes(), raw_words)
    return req


def _mutate(req, rng):
    """One random change to a request: a name, datatype, shape, value, contents field, raw blob or output."""
    t = req.inputs[int(rng.integers(len(req.inputs)))] if req.inputs else req.inputs.add()
    kind = int(rng.integers(10))
    if kind == 0:
        t.name = str(rng.choice(["", "zz", "x", "country", "petal_width"]))
    elif kind == 1:
        t.datatype = str(rng.choice(["FP64", "INT64", "INT32", "BOOL", "UINT8", "FP16", "", "fp32", "BYTES", "FP32"]))
    elif kind == 2:
        dims = rng.choice([-3, 0, 1, 2, 3, 4, 2**31, 2**62, MAX_ELEMENTS + 1], int(rng.integers(0, 10)))
        t.ClearField("shape")
        t.shape.extend(int(d) for d in dims)
    elif kind == 3:
        field = str(rng.choice(["fp32_contents", "fp64_contents", "int64_contents", "bool_contents", "uint_contents"]))
        getattr(t.contents, field).append(1 if field != "bool_contents" else True)
    elif kind == 4:
        t.contents.fp32_contents.extend(float(v) for v in rng.choice([np.nan, np.inf, -np.inf, 3e38, 0.0], 2))
    elif kind == 5:
        t.contents.bytes_contents.append(bytes(rng.integers(0, 256, int(rng.integers(0, 6)), dtype=np.uint8)))
    elif kind == 6 and req.raw_input_contents:
        i = int(rng.integers(len(req.raw_input_contents)))
        blob = bytearray(req.raw_input_contents[i])
        cut = int(rng.integers(0, len(blob) + 1))
        req.raw_input_contents[i] = bytes(blob[:cut]) + bytes(rng.integers(0, 256, int(rng.integers(0, 9)), np.uint8))
    elif kind == 6:
        req.raw_input_contents.append(bytes(rng.integers(0, 256, int(rng.integers(0, 9)), np.uint8)))
    elif kind == 7:
        req.outputs.add(name=str(rng.choice(["prediction", "nope", ""])))
    elif kind == 8:
        del req.inputs[int(rng.integers(len(req.inputs)))]
    else:
        req.model_name = str(rng.choice(["iris", "nope", "", "strings"]))
    return req


def test_random_requests_never_internal(stub, clients):
    """300 seeded random mutations of valid requests: each is answered OK, INVALID_ARGUMENT or NOT_FOUND (never
    INTERNAL or UNKNOWN); the workers keep serving."""
    rng = np.random.default_rng(18)
    seen = {}
    for i in range(300):
        req = _valid(rng)
        for _ in range(int(rng.integers(1, 4))):
            req = _mutate(req, rng)
        try:
            stub.ModelInfer(req, timeout=60)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
            assert exc.details(), req
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), (i, req)
        seen[code] = seen.get(code, 0) + 1
    assert seen[grpc.StatusCode.INVALID_ARGUMENT] > 100
    assert clients[0].is_server_ready()


def test_gzip_compressed_requests(clients, bc_data):
    """tritonclient.grpc's gRPC-level compression is decoded by gRPC itself before the V2 decoder sees it."""
    g, h = clients
    X, _, cols = bc_data
    gi, hi = _pair(cols, X[:20])
    got = g.infer("bc", gi, compression_algorithm="gzip").as_numpy("probability")
    np.testing.assert_array_equal(got, h.infer("bc", hi).as_numpy("probability"))


def _grpc_listeners(pid: int, port: int) -> int:
    """How many sockets process `pid` holds that LISTEN on 127.0.0.1:port (gRPC binds it v4-mapped on IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            parts = line.split()
            if parts[1].endswith(f"0100007F:{port:04X}") and parts[3] == "0A":
                inodes.add(parts[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


def _wait(cond, what, timeout=120.0):
    deadline = time.monotonic() + timeout  # a hang guard, not a timing assertion
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_every_worker_serves_grpc_and_a_restarted_one_rebinds(pkgs, tmp_path):
    port = free_port()
    srv = Server([f"strings={pkgs['strings']}"], "--replicas", "2", "--grpc-port", str(port), log=tmp_path / "log")
    try:
        srv.wait_ready()
        before = srv.worker_pids()
        assert len(before) == 2 and all(_grpc_listeners(p, port) == 1 for p in before)
        os.kill(before[0], signal.SIGKILL)
        _wait(lambda: len(srv.worker_pids()) == 2 and before[0] not in srv.worker_pids(), "the restart")
        new = (set(srv.worker_pids()) - set(before)).pop()
        _wait(lambda: _grpc_listeners(new, port) == 1, "the new worker to bind the gRPC port")
        for _ in range(20):  # a new connection each time: the kernel spreads them over both workers
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                out = pbg.GRPCInferenceServiceStub(channel).ModelInfer(_strings_req(), timeout=60)
                assert np.frombuffer(out.raw_output_contents[0], "<f4").tolist() == [2.0, 5.0]
    finally:
        assert srv.stop() == 0


def test_message_limit_and_taken_port(pkgs, tmp_path):
    """A message over --max-body-mb is RESOURCE_EXHAUSTED; a --grpc-port another process listens on is a clean error."""
    port = free_port()
    srv = Server([f"strings={pkgs['strings']}"], "--grpc-port", str(port), "--max-body-mb", "1", log=tmp_path / "a")
    try:
        srv.wait_ready()
        big = _strings_req(x=[0.0] * 300_000, words=[b"a"] * 300_000)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as exc:
                pbg.GRPCInferenceServiceStub(channel).ModelInfer(big, timeout=60)
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            other = Server(
                [f"strings={pkgs['strings']}"], "--grpc-port", str(taken.getsockname()[1]), log=tmp_path / "b"
            )
            assert other.proc.wait(timeout=120) == 2
            assert "cannot serve gRPC on 127.0.0.1" in other.output() and "--grpc-port" in other.output()
            other.stop()
    finally:
        srv.stop()


def test_stream_infer_answers_in_order_and_reports_errors_in_the_stream(stub, clients, bc_data):
    """ModelStreamInfer (Triton's bidirectional stream): each request answered in order, equal to the unary answer;
    a bad request is that response's error_message, naming the input, and the stream goes on."""
    X, _, cols = bc_data
    good = pb.ModelInferRequest(model_name="bc", id="s1")
    for i, c in enumerate(cols):
        good.inputs.add(name=c, datatype="FP32", shape=[3])
        good.raw_input_contents.append(np.ascontiguousarray(X[:3, i], "<f4").tobytes())
    bad = pb.ModelInferRequest()
    bad.CopyFrom(good)
    bad.id = "s2"
    bad.raw_input_contents[5] = np.array([np.inf, 0, 0], "<f4").tobytes()
    strings = _strings_req(x=(0.5, 2.0), words=(b"a", b"z"))
    got = list(stub.ModelStreamInfer(iter([good, bad, strings, good]), timeout=60))
    assert len(got) == 4
    assert [r.error_message for r in got[::2]] == ["", ""] and got[3].error_message == ""
    assert repr(cols[5]) in got[1].error_message and "infinite" in got[1].error_message
    unary = stub.ModelInfer(good, timeout=60)
    for r in (got[0], got[3]):
        assert r.infer_response.id == "s1"
        assert r.infer_response.raw_output_contents[0] == unary.raw_output_contents[0]
    assert np.frombuffer(got[2].infer_response.raw_output_contents[0], "<f4").tolist() == [1.5, 2.0]
    g, _ = clients  # the stock client's stream API
    answers = []
    g.start_stream(callback=lambda result, error: answers.append((result, error)))
    gi, _ = _pair(cols, X[:2])
    g.async_stream_infer("bc", gi, request_id="t1")
    g.stop_stream()
    assert len(answers) == 1 and answers[0][1] is None
    np.testing.assert_array_equal(answers[0][0].as_numpy("probability"), g.infer("bc", gi).as_numpy("probability"))
