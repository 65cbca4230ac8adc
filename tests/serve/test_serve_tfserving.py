"""TF-Serving REST over a real server: row and columnar :predict, versioned paths, status, errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest


def reference(pkg, cols, X):
    s = ort.InferenceSession(str(pkg / "model.onnx"))
    return s.run(None, {c: X[:, i] for i, c in enumerate(cols)})[0]


def test_instances_row_format(server, pkgs, bc_data):
    X, _, cols = bc_data
    rows = [{c: float(v) for c, v in zip(cols, x)} for x in X[:20]]
    with server.client() as c:
        r = c.post("/v1/models/bc:predict", json={"instances": rows})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        ref = reference(pkgs["bc"], cols, X[:20])
        np.testing.assert_allclose([p["probability"] for p in preds], ref, rtol=1e-6, atol=1e-7)
        assert [p["label"] for p in preds] == [int(v >= 0.5) for v in ref]  # class labels next to probabilities
        r2 = c.post("/v1/models/bc/versions/1:predict", json={"signature_name": "serving_default", "instances": rows})
        assert r2.json() == r.json()


def test_inputs_columnar_format(server, pkgs, bc_data):
    X, _, cols = bc_data
    with server.client() as c:
        r = c.post("/v1/models/bc:predict", json={"inputs": {c_: X[:9, i].tolist() for i, c_ in enumerate(cols)}})
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(
            r.json()["outputs"]["probability"], reference(pkgs["bc"], cols, X[:9]), rtol=1e-6, atol=1e-7
        )
        r = c.post(
            "/v1/models/iris:predict",
            json={
                "inputs": {
                    "sepal_length": [5.1, 6.7],
                    "sepal_width": [3.5, 3.0],
                    "petal_length": [1.4, 5.2],
                    "petal_width": [0.2, 2.3],
                }
            },
        )
        p = np.array(r.json()["outputs"]["probabilities"])
        assert p.shape == (2, 3) and list(p.argmax(axis=1)) == [0, 2]
        assert r.json()["outputs"]["label"] == [0, 2]


def test_strings_and_missing_values(server):
    with server.client() as c:
        r = c.post(
            "/v1/models/strings:predict",
            json={"instances": [{"x": 1.0, "country": "a"}, {"x": None, "country": "c"}, {"x": 2, "country": None}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0] == 2.0 and r.json()["predictions"][1] is None  # NaN -> null
        assert r.json()["predictions"][2] == 2.0  # missing string = "" -> unknown code 0


def test_status_and_metadata(server):
    with server.client() as c:
        st = c.get("/v1/models/bc").json()
        assert st["model_version_status"][0] == {
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        assert c.get("/v1/models/bc/versions/1").status_code == 200
        assert c.get("/v1/models/bc/versions/2").status_code == 404
        meta = c.get("/v1/models/strings/metadata").json()
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["inputs"]["country"]["dtype"] == "string" and "prediction" in sig["outputs"]


@pytest.mark.parametrize(
    "body,text",
    [
        ({"instances": [{"x": 1.0}]}, "missing input 'country'"),
        ({"instances": [{"x": 1.0, "country": "a"}, {"x": 2.0}]}, "instance 1 has different inputs"),
        ({"instances": [{"x": "one", "country": "a"}]}, "expects float32 numbers"),
        ({"instances": [{"x": 1.0, "country": 7}]}, "expects strings"),
        ({"instances": [{"x": [1.0, 2.0], "country": "a"}]}, "has shape [1, 2]"),
        ({"instances": [1.0, 2.0]}, "must be an object"),
        ({"instances": []}, "'instances' is empty"),
        ({"instances": [{"x": 1, "country": "a"}], "inputs": {}}, "exactly one of"),
        ({"inputs": [1.0]}, "must be an object"),
        ({"inputs": {"x": [1.0], "country": ["a"], "y": [2]}}, "unknown input 'y'"),
        ({"signature_name": "other", "instances": [{"x": 1, "country": "a"}]}, "unknown signature_name"),
        ({"instances": [{"x": "true", "country": "a"}]}, "expects float32 numbers"),  # (true itself is 1)
    ],
)
def test_bad_requests_are_400_with_a_reason(server, body, text):
    with server.client() as c:
        r = c.post("/v1/models/strings:predict", json=body)
        assert r.status_code == 400 and text in r.json()["error"], r.text


def test_unknown_model_version_verb(server):
    with server.client() as c:
        assert c.post("/v1/models/nope:predict", json={"instances": [1]}).status_code == 404
        assert c.post("/v1/models/bc/versions/3:predict", json={"instances": [1]}).status_code == 404
        r = c.post("/v1/models/bc/labels/prod:predict", json={"instances": [1]})
        assert r.status_code == 404 and "label" in r.json()["error"]
        assert c.post("/v1/models/bc:classify", json={}).status_code == 400
        assert c.get("/v1/models/bc:predict").status_code == 405
