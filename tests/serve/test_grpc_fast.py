"""The gRPC ModelInfer hot path (grpc/fast.py), in process: the remembered request layouts and the hand-written
response bytes answer what ONNX Runtime and the HTTP side answer, for raw and typed contents, 1 and 64 rows, every
dtype a signature allows; a bad buffer in a remembered layout is still a 400 that names the input."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.grpc.service_pb2 as pb
from servekit import InProcess, mixed_package

from roost.serve.codec import HTTPError
from roost.serve.grpc import fast
from roost.serve.grpc.service import Servicer, request_parser
from roost.serve.worker import create_app

TYPED = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents", "BOOL": "bool_contents"}
NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT64": "<i8", "BOOL": "?"}
MIXED = [("f", "FP32"), ("d", "FP64"), ("i", "INT64"), ("b", "BOOL"), ("s", "BYTES")]


def _request(model: str, columns: list[tuple[str, str, np.ndarray]], raw: bool, rid: str = "") -> bytes:
    """A serialized ModelInferRequest (tritonclient's generated classes) with one 1-D input per column."""
    req = pb.ModelInferRequest(model_name=model, id=rid)
    for name, datatype, values in columns:
        t = req.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        if datatype == "BYTES":
            words = [str(v).encode() for v in values]
            if raw:
                req.raw_input_contents.append(b"".join(len(w).to_bytes(4, "little") + w for w in words))
            else:
                t.contents.bytes_contents.extend(words)
        elif raw:
            req.raw_input_contents.append(np.asarray(values, NUMPY[datatype]).tobytes())
        else:
            getattr(t.contents, TYPED[datatype]).extend(values.tolist())
    return req.SerializeToString()


class Side:
    """One app answering the same requests in process over gRPC (the servicer) and HTTP (the ASGI app)."""

    def __init__(self, models: list[str]) -> None:
        self.ip = InProcess(create_app(models))
        self.svc = Servicer(self.ip.app)  # type: ignore[arg-type]
        self.parse = request_parser("ModelInferRequest")

    def grpc(self, data: bytes) -> pb.ModelInferResponse:
        return pb.ModelInferResponse.FromString(self.ip.loop.run_until_complete(self.svc.ModelInfer(self.parse(data))))

    def http(self, model: str, body: dict) -> list:
        status, _, out = self.ip.request("POST", f"/v2/models/{model}/infer", orjson.dumps(body))
        assert status == 200, out
        return orjson.loads(out)["outputs"][0]["data"]


@pytest.fixture(scope="module")
def side(pkgs, tmp_path_factory):
    s = Side([str(pkgs["bc"]), str(mixed_package(tmp_path_factory.mktemp("mixed") / "mixed"))])
    yield s
    s.ip.close()


def _out(resp: pb.ModelInferResponse, name: str) -> np.ndarray:
    i = [o.name for o in resp.outputs].index(name)
    out = resp.outputs[i]
    return np.frombuffer(resp.raw_output_contents[i], NUMPY[out.datatype]).reshape(list(out.shape))


@pytest.mark.parametrize("rows", [1, 64])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_bc_equals_onnxruntime_and_http_also_from_a_remembered_layout(side, pkgs, bc_data, rows, raw):
    X, _, cols = bc_data
    sess = ort.InferenceSession(str(pkgs["bc"] / "model.onnx"))
    for start in (0, 100, 300):  # the same layout three times (remembered after the first), other values each time
        part = X[start : start + rows].astype(np.float32)
        resp = side.grpc(_request("bc", [(c, "FP32", part[:, j]) for j, c in enumerate(cols)], raw, rid=f"r{start}"))
        got = _out(resp, "probability")
        want = sess.run(["probability"], {c: part[:, j] for j, c in enumerate(cols)})[0]
        assert got.shape == (rows,) and resp.id == f"r{start}" and resp.model_name == "bc"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        body = {
            "inputs": [
                {"name": c, "datatype": "FP32", "shape": [rows], "data": part[:, j].tolist()}
                for j, c in enumerate(cols)
            ]
        }
        np.testing.assert_allclose(got, side.http("bc", body), rtol=1e-6, atol=1e-7)
        assert [o.name for o in resp.outputs] == ["probability", "label"]
        np.testing.assert_array_equal(_out(resp, "label"), (want >= 0.5).astype(np.int64))


@pytest.mark.parametrize("rows", [1, 64])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_every_dtype_equals_onnxruntime_and_http(side, pkgs, rows, raw):
    """y = f + d + i + b + code(s) over FP32, FP64, INT64, BOOL and BYTES inputs."""
    rng = np.random.default_rng(rows)
    cols = {
        "f": rng.normal(size=rows).astype(np.float32),
        "d": rng.normal(size=rows),
        "i": rng.integers(-1000, 1000, size=rows),
        "b": rng.integers(0, 2, size=rows).astype(bool),
        "s": rng.choice(np.array(["a", "b", "zz"], dtype=object), size=rows),
    }
    resp = side.grpc(_request("mixed", [(n, d, cols[n]) for n, d in MIXED], raw))
    got = _out(resp, "y")
    model = side.ip.app.repo.get("mixed")
    sess = ort.InferenceSession(str(model.package.path / "model.onnx"))
    want = sess.run(["y"], {n: (v.astype(str) if n == "s" else v) for n, v in cols.items()})[0]
    np.testing.assert_array_equal(got, want)
    body = {
        "inputs": [
            {
                "name": n,
                "datatype": d,
                "shape": [rows],
                "data": [str(v) for v in cols[n]] if n == "s" else cols[n].tolist(),
            }
            for n, d in MIXED
        ]
    }
    np.testing.assert_array_equal(got, np.asarray(side.http("mixed", body), np.float32))


def test_a_bad_buffer_in_a_remembered_layout_names_the_input(side, bc_data):
    X, _, cols = bc_data
    good = [(c, "FP32", X[:2, j]) for j, c in enumerate(cols)]
    side.grpc(_request("bc", good, raw=True))  # the layout is remembered now
    memo = side.svc.layouts._seen[side.ip.app.repo.get("bc")]
    assert any(v is not None and v[1] == 2 for v in memo.values())

    def sent(change) -> HTTPError:
        req = pb.ModelInferRequest.FromString(_request("bc", good, raw=True))
        change(req)
        with pytest.raises(HTTPError) as err:
            side.grpc(req.SerializeToString())
        assert err.value.status == 400
        return err.value

    inf = np.array([np.inf, 1.0], "<f4").tobytes()
    assert repr(cols[3]) in sent(lambda r: r.raw_input_contents.__setitem__(3, inf)).message
    assert repr(cols[0]) in sent(lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 4)).message
    assert "raw_input_contents has 29" in sent(lambda r: r.raw_input_contents.pop()).message
    # and the remembered layout still answers right afterwards
    np.testing.assert_array_equal(
        _out(side.grpc(_request("bc", good, raw=True)), "probability"),
        _out(side.grpc(_request("bc", good, raw=False)), "probability"),
    )


@pytest.mark.parametrize(
    "arr",
    [
        np.array([0.25, -1.5], np.float32),
        np.arange(6, dtype=np.float64).reshape(2, 3),
        np.array([[1], [2]], np.int32),
        np.array([True, False]),
        np.array(["é", "", "abc"], dtype=object),
        np.zeros((0,), np.float32),
        np.arange(300, dtype=np.int64).astype(">i8"),  # big-endian: answered little-endian
    ],
    ids=["fp32", "fp64-2d", "int32-col", "bool", "bytes", "empty", "big-endian"],
)
def test_hand_written_response_parses_as_the_message(side, arr):
    model = side.ip.app.repo.get("bc")
    data = fast.encode_response(model, {"a": arr, "b": arr}, ["b"], "id-1")
    resp = pb.ModelInferResponse.FromString(data)
    assert (resp.model_name, resp.model_version, resp.id) == ("bc", model.version, "id-1")
    assert len(resp.outputs) == 1 and resp.outputs[0].name == "b" and list(resp.outputs[0].shape) == list(arr.shape)
    blob = resp.raw_output_contents[0]
    if arr.dtype == object:
        assert resp.outputs[0].datatype == "BYTES"
        words, off = [], 0
        while off < len(blob):
            n = int.from_bytes(blob[off : off + 4], "little")
            words.append(blob[off + 4 : off + 4 + n].decode())
            off += 4 + n
        assert words == list(arr)
    else:
        want = {"f": {4: "FP32", 8: "FP64"}, "i": {4: "INT32", 8: "INT64"}, "b": {1: "BOOL"}}[arr.dtype.kind][
            arr.itemsize
        ]
        assert resp.outputs[0].datatype == want
        np.testing.assert_array_equal(np.frombuffer(blob, arr.dtype.newbyteorder("<")).reshape(arr.shape), arr)


def test_the_layout_memo_does_not_keep_a_replaced_model_alive(side, bc_data):
    """A model evicted or replaced by a reload must be freed (its ONNX session's memory with it)."""
    import gc

    X, _, cols = bc_data

    class Stand:  # a served model as the memo sees it
        package = side.ip.app.repo.get("bc").package

    layouts, model = fast.Layouts(), Stand()
    req = side.parse(_request("bc", [(c, "FP32", X[:2, j]) for j, c in enumerate(cols)], raw=True))
    assert layouts.decode(model, req)[1] == 2  # type: ignore[arg-type]
    assert len(layouts._seen) == 1
    del model
    gc.collect()
    assert len(layouts._seen) == 0
