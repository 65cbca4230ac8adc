"""KServe V2 over a real server: the stock tritonclient (binary and JSON), metadata, errors, batching."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as tc
from servekit import v2_body
from tritonclient.utils import InferenceServerException


def reference(pkg, cols, X):
    """ONNX Runtime on the package directly, whole matrix at once."""
    s = ort.InferenceSession(str(pkg / "model.onnx"))
    return s.run(None, {c: X[:, i] for i, c in enumerate(cols)})[0]


@pytest.fixture(scope="module")
def triton(server):
    client = tc.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield client
    client.close()


def _inputs(cols, X, binary):
    ins = []
    for i, c in enumerate(cols):
        t = tc.InferInput(c, [len(X)], "FP32")
        t.set_data_from_numpy(np.ascontiguousarray(X[:, i]), binary_data=binary)
        ins.append(t)
    return ins


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer(triton, pkgs, bc_data, binary):
    X, _, cols = bc_data
    out = tc.InferRequestedOutput("probability", binary_data=binary)
    res = triton.infer("bc", _inputs(cols, X[:50], binary), outputs=[out], request_id="r1")
    got = res.as_numpy("probability")
    assert got.dtype == np.float32 and got.shape == (50,)
    np.testing.assert_allclose(got, reference(pkgs["bc"], cols, X[:50]), rtol=1e-6, atol=1e-7)
    assert res.get_response()["id"] == "r1"
    assert res.get_response()["model_version"] == "1"


def test_tritonclient_default_outputs_binary_and_compression(triton, pkgs, bc_data):
    X, _, cols = bc_data
    res = triton.infer("bc", _inputs(cols, X[:7], True), request_compression_algorithm="gzip")
    np.testing.assert_allclose(res.as_numpy("probability"), reference(pkgs["bc"], cols, X[:7]), rtol=1e-6, atol=1e-7)
    res = triton.infer("bc", _inputs(cols, X[:3], True), model_version="1", request_compression_algorithm="deflate")
    assert res.as_numpy("probability").shape == (3,)


def test_tritonclient_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("iris") and triton.is_model_ready("iris", "1")
    assert not triton.is_model_ready("nope")
    meta = triton.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["1"]
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [("probabilities", [-1, 3]), ("label", [-1])]
    assert {i["datatype"] for i in meta["inputs"]} == {"FP32"}
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_inputs_binary_and_json(triton, binary):
    x = tc.InferInput("x", [4], "FP32")
    x.set_data_from_numpy(np.array([0.5, 1, 2, 3], dtype=np.float32), binary_data=binary)
    country = tc.InferInput("country", [4], "BYTES")
    country.set_data_from_numpy(np.array(["a", "b", "c", "zz"], dtype=object), binary_data=binary)
    res = triton.infer("strings", [x, country], outputs=[tc.InferRequestedOutput("prediction", binary_data=binary)])
    np.testing.assert_array_equal(res.as_numpy("prediction"), np.array([1.5, 3, 5, 3], dtype=np.float32))


def test_multiclass_2d_output(triton):
    ins = []
    for name, v in [("sepal_length", 5.1), ("sepal_width", 3.5), ("petal_length", 1.4), ("petal_width", 0.2)]:
        t = tc.InferInput(name, [2], "FP32")
        t.set_data_from_numpy(np.array([v, v], dtype=np.float32))
        ins.append(t)
    p = triton.infer("iris", ins).as_numpy("probabilities")
    assert p.shape == (2, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5) and p[0].argmax() == 0


def test_tritonclient_errors_are_clean(triton, bc_data):
    X, _, cols = bc_data
    with pytest.raises(InferenceServerException, match="not served"):
        triton.infer("nope", _inputs(cols, X[:1], True))
    with pytest.raises(InferenceServerException, match="missing input"):
        triton.infer("bc", _inputs(cols[:-1], X[:1, :-1], True))
    bad = _inputs(cols, X[:2], True)
    bad[3] = tc.InferInput(cols[3], [2], "FP64")
    bad[3].set_data_from_numpy(X[:2, 3].astype(np.float64))
    with pytest.raises(InferenceServerException, match="FP64 but the model expects FP32"):
        triton.infer("bc", bad)


def _post(client, path, body, **kw):
    r = client.post(path, content=body if isinstance(body, bytes) else json.dumps(body).encode(), **kw)
    return r.status_code, r.json()


def test_json_errors_name_the_problem(server, bc_data):
    X, _, cols = bc_data
    with server.client() as c:
        body = v2_body(cols, X[:2])
        ok, res = _post(c, "/v2/models/bc/infer", body)
        assert ok == 200 and res["outputs"][0]["shape"] == [2]
        cases = []
        b = v2_body(cols, X[:2])
        b["inputs"][0]["data"] = ["x", "y"]
        cases.append((b, 400, "expects float32 numbers"))
        b = v2_body(cols, X[:2])
        b["inputs"][1]["shape"] = [3]
        cases.append((b, 400, "needs 3 values"))
        b = v2_body(cols, X[:2])
        b["inputs"][1]["shape"] = [1, 2]
        cases.append((b, 400, "expects [-1]"))
        b = v2_body(cols, X[:2])
        b["inputs"][2]["data"] = [1.0]
        b["inputs"][2]["shape"] = [1]
        cases.append((b, 400, "disagree on the batch size"))
        b = v2_body(cols, X[:2])
        b["inputs"].pop(5)
        cases.append((b, 400, f"missing input '{cols[5]}'"))
        b = v2_body(cols, X[:2])
        b["inputs"].append({"name": "zzz", "datatype": "FP32", "shape": [2], "data": [1, 2]})
        cases.append((b, 400, "unknown input 'zzz'"))
        b = v2_body(cols, X[:2])
        b["outputs"] = [{"name": "nope"}]
        cases.append((b, 400, "unknown output 'nope'"))
        b = v2_body(cols, X[:2])
        b["inputs"][0]["data"] = [[1.0], [2.0, 3.0]]
        cases.append((b, 400, "ragged"))
        cases.append(({"inputs": []}, 400, "non-empty 'inputs'"))
        cases.append(([1, 2], 400, "JSON object"))
        cases.append((b"{not json", 400, "not valid JSON"))
        for body, status, text in cases:
            got, res = _post(c, "/v2/models/bc/infer", body)
            assert (got, text in res.get("error", "")) == (status, True), (text, res)
        assert _post(c, "/v2/models/nope/infer", v2_body(cols, X[:1]))[0] == 404
        assert _post(c, "/v2/models/bc/versions/7/infer", v2_body(cols, X[:1]))[0] == 404
        assert c.get("/v2/models/bc/infer").status_code == 405
        assert c.get("/nowhere").json()["error"].startswith("no route")
        huge = b'{"inputs": [' + b" " * (2 << 20) + b"]}"
        status, res = _post(c, "/v2/models/bc/infer", huge)
        assert status == 413 and "limit" in res["error"]
        bomb = gzip.compress(b" " * (3 << 20))
        status, res = _post(c, "/v2/models/bc/infer", bomb, headers={"content-encoding": "gzip"})
        assert status == 413
        # the worker is alive and well after all of that
        assert _post(c, "/v2/models/bc/infer", v2_body(cols, X[:1]))[0] == 200


def test_binary_framing_errors(server, bc_data):
    X, _, cols = bc_data
    head = json.dumps(
        {"inputs": [{"name": cols[0], "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}]}
    ).encode()
    with server.client() as c:
        for hdr, extra, text in [
            ("abc", b"", "must be an integer"),
            (str(len(head) + 99), b"", "body has"),
            (str(len(head)), b"\0" * 4, "binary_data_size 8"),
            (str(len(head)), b"\0" * 12, "not claimed"),
        ]:
            r = c.post("/v2/models/bc/infer", content=head + extra, headers={"inference-header-content-length": hdr})
            assert r.status_code == 400 and text in r.json()["error"], r.text


def test_batching_equals_one_by_one(server, pkgs, bc_data):
    """Concurrent single-row requests (merged into batches by the server) match sequential ones.

    Equal up to float32 rounding: ONNX Runtime's GEMM kernel for one row differs from the one for many rows
    in the last bits (max 2e-7 here), so the comparison allows 1e-6.
    """
    X, _, cols = bc_data
    n = 120
    with server.client() as c:
        seq = [
            c.post("/v2/models/bc/infer", json=v2_body(cols, X[i : i + 1])).json()["outputs"][0]["data"][0]
            for i in range(n)
        ]

    def one(i: int) -> float:
        with server.client() as cc:
            return cc.post("/v2/models/bc/infer", json=v2_body(cols, X[i : i + 1])).json()["outputs"][0]["data"][0]

    with ThreadPoolExecutor(16) as pool:
        conc = list(pool.map(one, range(n)))
    np.testing.assert_allclose(conc, seq, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(seq, reference(pkgs["bc"], cols, X[:n]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "inputs", [[5], ["x"], [None], [[1, 2, 3, 4]], [{"name": ["a"], "datatype": "FP32", "shape": [1], "data": [1]}]]
)
def test_malformed_input_entries_are_400(server, inputs):
    with server.client() as c:
        r = c.post("/v2/models/bc/infer", json={"inputs": inputs})
        assert r.status_code == 400 and "inputs[0]" in r.json()["error"], r.text
