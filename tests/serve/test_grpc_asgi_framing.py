"""The ASGI gRPC front (roost.serve.grpc.asgi over uvicorn's HTTP/2) on gRPC framing a grpcio client never sends,
sent raw (h2kit): where the spec is silent it answers as grpcio's own server does (each case is sent to both
fronts, grpcio's the reference); where grpcio is lenient it answers as PROTOCOL-HTTP2 says."""

from __future__ import annotations

import gzip
import zlib

import grpc
import numpy as np
import pytest
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
from h2kit import INFER, call, calls_on_one_connection, frame
from servekit import float_columns_request
from test_serve_ids_labels import grpc_app

from roost.serve.grpc.asgi import percent
from roost.serve.grpc.h2 import STREAM_CAP
from roost.serve.worker import create_app

TOKEN = "framing-token"
CT, TE = (b"content-type", b"application/grpc"), (b"te", b"trailers")
AUTH = (b"authorization", f"Bearer {TOKEN}".encode())
LIVE = "/inference.GRPCInferenceService/ServerLive"


@pytest.fixture(scope="module")
def fronts(pkgs):
    """{front: port}: the same model and token served by the ASGI front and by grpcio's (1 MiB message limit)."""
    ports = {}
    with grpc_app(create_app([str(pkgs["bc"])], token=TOKEN), "asgi") as a:
        with grpc_app(create_app([str(pkgs["bc"])], token=TOKEN), "grpcio") as g:
            ports["asgi"], ports["grpcio"] = int(a.rsplit(":", 1)[1]), int(g.rsplit(":", 1)[1])
            yield ports


@pytest.fixture(scope="module")
def msg(bc_data):
    X, _, cols = bc_data
    return float_columns_request(cols, X[:3]).SerializeToString()


def _probabilities(body: bytes) -> list[float]:
    """P(class 1) from a framed ModelInferResponse."""
    resp = pb.ModelInferResponse.FromString(body[5:])
    return np.frombuffer(resp.raw_output_contents[0], "<f4").tolist()


CASES = {  # name: (body from the message, extra headers, path)
    "plain": (lambda m: frame(m), [], INFER),
    "gzip": (lambda m: frame(gzip.compress(m), 1), [(b"grpc-encoding", b"gzip")], INFER),
    "deflate": (lambda m: frame(zlib.compress(m), 1), [(b"grpc-encoding", b"deflate")], INFER),
    "compressed flag without grpc-encoding": (lambda m: frame(m, 1), [], INFER),
    "compressed flag, gzip encoding, not gzip bytes": (
        lambda m: frame(b"nope", 1),
        [(b"grpc-encoding", b"gzip")],
        INFER,
    ),
    "truncated frame": (lambda m: frame(m)[:-7], [], INFER),
    "a prefix cut short": (lambda m: b"\0\0\0", [], INFER),
    "no message": (lambda m: b"", [], INFER),
    "declared length over the limit": (lambda m: b"\0" + (5 << 20).to_bytes(4, "big") + m, [], INFER),
    "unknown method": (lambda m: frame(b""), [], "/inference.GRPCInferenceService/Nope"),
    "unknown service": (lambda m: frame(b""), [], "/nope.Service/ModelInfer"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_framing_answers_equal_grpcios(fronts, msg, case):
    make, extra, path = CASES[case]
    got = {f: call(port, make(msg), path, [CT, TE, AUTH, *extra]) for f, port in fronts.items()}
    a, g = got["asgi"], got["grpcio"]
    assert a.status == 200 and a.grpc_status == g.grpc_status, (a, g)
    if g.grpc_status == 0:
        assert _probabilities(a.body) == _probabilities(g.body)
    else:
        assert a.body == b"" and a.grpc_message
    if case.startswith(("compressed flag", "declared")):  # the same words as grpcio's
        assert a.grpc_message in g.grpc_message


@pytest.mark.parametrize("token", [None, b"Bearer wrong"])
def test_no_or_wrong_token_is_unauthenticated_on_both_fronts(fronts, msg, token):
    headers = [CT, TE] + ([(b"authorization", token)] if token else [])
    got = {f: call(port, frame(msg), INFER, headers) for f, port in fronts.items()}
    assert got["asgi"].grpc_status == got["grpcio"].grpc_status == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert got["asgi"].grpc_message == got["grpcio"].grpc_message
    live = call(fronts["asgi"], frame(b""), LIVE, [CT, TE])  # the health RPCs need no token, as /v2/health/*
    assert live.grpc_status == 0 and pb.ServerLiveResponse.FromString(live.body[5:]).live


def test_where_grpcio_is_lenient_the_asgi_front_follows_the_spec(fronts, msg):
    port = fronts["asgi"]
    wrong_ct = call(port, frame(msg), INFER, [(b"content-type", b"application/json"), TE, AUTH])
    assert wrong_ct.status == 415  # "If Content-Type does not begin with application/grpc ... SHOULD ... 415"
    assert call(port, frame(msg), INFER, [TE, AUTH]).status == 415
    assert call(port, frame(msg), INFER, [(b"content-type", b"application/grpc+proto"), TE, AUTH]).grpc_status == 0
    no_te = call(port, frame(msg), INFER, [CT, AUTH])  # no trailers would reach the client: the status is a header
    assert no_te.status == 400 and no_te.headers["grpc-status"] == "13" and "te: trailers" in no_te.grpc_message
    two = call(port, frame(msg) * 2, INFER, [CT, TE, AUTH])  # grpcio answers the first of the two
    assert two.grpc_status == grpc.StatusCode.UNIMPLEMENTED.value[0] and "exactly one" in two.grpc_message
    flag = call(port, b"\2" + frame(msg)[1:], INFER, [CT, TE, AUTH])
    assert flag.grpc_status == grpc.StatusCode.INTERNAL.value[0] and "compressed-flag" in flag.grpc_message
    snappy = call(port, frame(msg, 1), INFER, [CT, TE, AUTH, (b"grpc-encoding", b"snappy")])
    assert snappy.grpc_status == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert "gzip" in snappy.headers["grpc-accept-encoding"]


def test_a_grpcio_client_reads_the_same_errors_from_both_fronts(fronts, bc_data):
    """Through a real grpcio client: the status and its percent-encoded message (non-ASCII, ending in a space,
    over the limit) decode to what grpcio's own server answers."""
    X, _, cols = bc_data
    big = float_columns_request(cols, np.zeros((9000, 30), np.float32))
    named = float_columns_request(cols, X[:1])
    named.model_name = "modèle %20 "
    seen = {}
    for front, port in fronts.items():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pbg.GRPCInferenceServiceStub(channel)
            md = (("authorization", f"Bearer {TOKEN}"),)
            for name, req in (("big", big), ("named", named)):
                with pytest.raises(grpc.RpcError) as err:
                    stub.ModelInfer(req, metadata=md, timeout=60)
                seen[front, name] = (err.value.code(), err.value.details())
    assert seen["asgi", "named"] == seen["grpcio", "named"]
    assert seen["asgi", "named"][0] == grpc.StatusCode.NOT_FOUND and "'modèle %20 '" in seen["asgi", "named"][1]
    assert seen["asgi", "big"][0] == seen["grpcio", "big"][0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in seen["asgi", "big"][1]


@pytest.mark.parametrize("text", ["plain words", " lead and trail ", "é\x00\n%41 ", "%", ""])
def test_percent_encoding_round_trips_and_is_a_valid_http2_value(text):
    from urllib.parse import unquote_to_bytes

    out = percent(text)
    assert unquote_to_bytes(out) == text.encode()
    assert all(0x20 <= b < 0x7F for b in out) and out[:1] != b" " and out[-1:] != b" "


def test_a_long_lived_connection_moves_on_before_zttps_stream_limit(fronts, msg):
    """zttp ends a connection with ENHANCE_YOUR_CALM (11) at its 4,096th stream; the front sends a graceful GOAWAY
    (NO_ERROR) first, after answering every call it accepted."""
    ok, goaway = calls_on_one_connection(fronts["asgi"], frame(msg), 4200, [AUTH])
    assert goaway == 0 and ok == STREAM_CAP


@pytest.mark.parametrize("cork", [True, pytest.param(False, marks=pytest.mark.xfail(strict=True, reason="uncorked"))])
def test_an_answer_is_one_write_to_the_socket(pkgs, msg, monkeypatch, cork):
    """uvicorn writes a gRPC answer's headers, message and trailers as three writes (three syscalls, three client
    wake-ups); the front gathers them into one (the uncorked case shows the count it replaces)."""
    from roost.serve.grpc import h2

    writes: list[int] = []

    class Counting:
        def __init__(self, transport):
            self.transport = transport

        def write(self, data):
            writes.append(len(data))
            self.transport.write(data)

        def __getattr__(self, name):
            return getattr(self.transport, name)

    made = h2.GrpcH2Protocol.connection_made
    monkeypatch.setattr(h2.GrpcH2Protocol, "connection_made", lambda self, t: made(self, Counting(t)))
    monkeypatch.setattr(h2, "CORK", cork)
    with grpc_app(create_app([str(pkgs["bc"])]), "asgi") as addr:
        ok, _ = calls_on_one_connection(int(addr.rsplit(":", 1)[1]), frame(msg), 40)
    assert ok == 40
    assert len(writes) <= 40 + 3, writes  # + the server's SETTINGS, its ACK of the client's, a WINDOW_UPDATE


def test_the_front_is_chosen_by_the_environment(monkeypatch):
    from roost.errors import RoostError
    from roost.serve.grpc.server import grpc_front

    monkeypatch.delenv("ROOST_SERVE_GRPC_FRONT", raising=False)
    assert grpc_front() == "asgi"
    monkeypatch.setenv("ROOST_SERVE_GRPC_FRONT", " GRPCIO ")
    assert grpc_front() == "grpcio" and grpc_front("asgi") == "asgi"
    monkeypatch.setenv("ROOST_SERVE_GRPC_FRONT", "h2o")
    with pytest.raises(RoostError, match="ROOST_SERVE_GRPC_FRONT='h2o'") as err:
        grpc_front()
    assert "asgi" in err.value.hint and "grpcio" in err.value.hint


def test_columns_in_any_order_answer_like_onnxruntime(fronts, pkgs, bc_data):
    """In the signature's order the fast decode's block feeds the matrix graph as is; in another order the columns
    are stacked by name: both equal ONNX Runtime on the package's own graph."""
    import onnxruntime as ort

    X, _, cols = bc_data
    (want,) = ort.InferenceSession(str(pkgs["bc"] / "model.onnx")).run(
        ["probability"], {c: X[:5, i] for i, c in enumerate(cols)}
    )
    in_order = float_columns_request(cols, X[:5])
    backwards = pb.ModelInferRequest(model_name="bc")
    for i in reversed(range(len(cols))):
        backwards.inputs.add(name=cols[i], datatype="FP32", shape=[5])
        backwards.raw_input_contents.append(np.ascontiguousarray(X[:5, i], "<f4").tobytes())
    with grpc.insecure_channel(f"127.0.0.1:{fronts['asgi']}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        for req in (in_order, backwards, in_order, backwards):  # the second of each from a remembered layout
            out = stub.ModelInfer(req, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=60)
            got = np.frombuffer(out.raw_output_contents[0], "<f4")
            np.testing.assert_allclose(got, want.reshape(-1), rtol=1e-6, atol=1e-7)


def _frames(body: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(body):
        size = int.from_bytes(body[pos + 1 : pos + 5], "big")
        out.append(body[pos + 5 : pos + 5 + size])
        pos += 5 + size
    return out


def test_a_stream_of_messages_in_one_body_is_answered_like_grpcio(fronts, msg):
    """ModelStreamInfer sent raw: three messages in one request body (the middle one not a protobuf message) get
    three answers in order on both fronts — an answer, an error_message, an answer — then grpc-status 0; a stream
    cut inside a message ends with an error status on the ASGI front."""
    path = "/inference.GRPCInferenceService/ModelStreamInfer"
    body = frame(msg) + frame(b"\xff\xff\xff") + frame(msg)
    got = {f: call(port, body, path, [CT, TE, AUTH]) for f, port in fronts.items()}
    for front, ans in got.items():
        assert ans.grpc_status == 0, (front, ans)
        replies = [pb.ModelStreamInferResponse.FromString(b) for b in _frames(ans.body)]
        assert [bool(r.error_message) for r in replies] == [False, True, False], front
        assert "not a valid inference.ModelInferRequest" in replies[1].error_message
    a, g = ([pb.ModelStreamInferResponse.FromString(b) for b in _frames(got[f].body)] for f in ("asgi", "grpcio"))
    assert a[0].infer_response.raw_output_contents == g[0].infer_response.raw_output_contents
    assert a[1].error_message == g[1].error_message
    cut = call(fronts["asgi"], frame(msg) + frame(msg)[:9], path, [CT, TE, AUTH])
    assert len(_frames(cut.body)) == 1 and cut.grpc_status == grpc.StatusCode.INTERNAL.value[0]
    anon = call(fronts["asgi"], frame(msg), path, [CT, TE])
    assert anon.grpc_status == grpc.StatusCode.UNAUTHENTICATED.value[0] and anon.body == b""
