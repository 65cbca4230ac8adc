"""One rule for booleans given to a numeric input (#30 item 9): a JSON true/false is 1/0, as `roost predict` scores
a boolean column and as training encodes one (a bool feature is numeric). Before, serve refused them (400) while
predict scored them. Checked on every decoder — KServe V2 one-matrix and general, TF-Serving rows and columns —
and against `roost predict` on the same rows, both compared with onnxruntime on the values cast to numbers."""

from __future__ import annotations

import numpy as np
import orjson
from servekit import InProcess, mixed_package, v2_body

from roost.serve.worker import create_app


def _post(ip: InProcess, path: str, body: object) -> tuple[int, dict]:
    status, _, out = ip.request("POST", path, orjson.dumps(body))
    return status, orjson.loads(out)


def _ort(pkg, cols: list[str], X: np.ndarray) -> np.ndarray:
    """P(class 1) from onnxruntime on the package's file, fed float32 columns: the reference."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {c: np.ascontiguousarray(X[:, j], dtype=np.float32) for j, c in enumerate(cols)}
    return np.asarray(sess.run(["probability"], feeds)[0]).reshape(-1)


def _as_bools(X: np.ndarray, cols_at: list[int]) -> tuple[np.ndarray, list[list]]:
    """X with the columns `cols_at` made 0/1 (by the median), and those columns as Python booleans."""
    X = X.copy()
    flags = []
    for j in cols_at:
        b = X[:, j] > np.median(X[:, j])
        X[:, j] = b.astype(np.float32)
        flags.append([bool(v) for v in b])
    return X, flags


def test_booleans_in_fp32_inputs_are_1_and_0_on_every_http_decoder(pkgs, bc_data):
    X, _, cols = bc_data
    Xb, flags = _as_bools(X[:64], [4, 9])
    want = _ort(pkgs["bc"], cols, Xb)
    ip = InProcess(create_app([str(pkgs["bc"])]))
    try:
        # V2, one matrix of FP32 columns: whole columns of true/false, and a single boolean among numbers
        body = v2_body(cols, Xb)
        body["inputs"][4]["data"], body["inputs"][9]["data"] = flags
        status, out = _post(ip, "/v2/models/bc/infer", body)
        assert status == 200, out
        np.testing.assert_allclose(out["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
        body = v2_body(cols, Xb)
        body["inputs"][4]["data"][10] = flags[0][10]
        status, out = _post(ip, "/v2/models/bc/infer", body)
        np.testing.assert_allclose(out["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
        # V2, the general decoder (an input sent as a nested [n, 1] list takes it)
        body = v2_body(cols, Xb)
        body["inputs"][9] = {"name": cols[9], "datatype": "FP32", "shape": [64], "data": flags[1]}
        body["inputs"][4] = {"name": cols[4], "datatype": "FP32", "shape": [64], "data": [[v] for v in flags[0]]}
        status, out = _post(ip, "/v2/models/bc/infer", body)
        if status == 200:
            np.testing.assert_allclose(out["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
        else:  # a nested list for a 1-D input is refused for its shape, never for its booleans
            assert "bool" not in out["error"], out
        # TF-Serving REST: row instances and columnar inputs
        rows = [dict(zip(cols, map(float, r), strict=True)) for r in Xb[:5]]
        for i, r in enumerate(rows):
            r[cols[4]], r[cols[9]] = flags[0][i], flags[1][i]
        status, out = _post(ip, "/v1/models/bc:predict", {"instances": rows})
        assert status == 200, out
        got = [p["probability"] for p in out["predictions"]]
        np.testing.assert_allclose(got, want[:5], rtol=1e-5, atol=1e-6)
        colmajor = {c: [float(v) for v in Xb[:5, j]] for j, c in enumerate(cols)}
        colmajor[cols[4]], colmajor[cols[9]] = flags[0][:5], flags[1][:5]
        status, out = _post(ip, "/v1/models/bc:predict", {"inputs": colmajor})
        assert status == 200, out
        np.testing.assert_allclose(out["outputs"]["probability"], want[:5], rtol=1e-5, atol=1e-6)
    finally:
        ip.close()


def test_booleans_in_fp64_and_int64_inputs_are_1_and_0_on_the_general_path(tmp_path):
    """y = f + d + i + b + code(s): true/false in the float32, float64 and int64 inputs add 1/0."""
    ip = InProcess(create_app([str(mixed_package(tmp_path / "mixed"))]))
    try:
        good = {
            "f": ("FP32", [0.5, 1.5, -2.0]),
            "d": ("FP64", [1.0, 2.0, 3.0]),
            "i": ("INT64", [10, 20, 30]),
            "b": ("BOOL", [True, False, True]),
            "s": ("BYTES", ["a", "b", "zzz"]),
        }

        def y(**bad: list) -> list[float]:
            cols = {**{k: v[1] for k, v in good.items()}, **bad}
            body = {"inputs": [{"name": k, "datatype": good[k][0], "shape": [3], "data": cols[k]} for k in good]}
            status, out = _post(ip, "/v2/models/mixed/infer", body)
            assert status == 200, (bad, out)
            return out["outputs"][0]["data"]

        base = y()
        for name, data, delta in (
            ("f", [0.5, True, -2.0], [0.0, 1.0 - 1.5, 0.0]),
            ("d", [False, 2.0, 3.0], [-1.0, 0.0, 0.0]),
            ("i", [10, True, False], [0.0, 1.0 - 20, 0.0 - 30]),
        ):
            np.testing.assert_allclose(y(**{name: data}), np.add(base, delta), rtol=1e-6)
    finally:
        ip.close()


def test_predict_and_serve_give_the_same_numbers_for_a_boolean_column(pkgs, bc_data, tmp_path):
    """A Parquet table whose two columns are booleans, scored by `roost predict` and by the server (the same rows
    as JSON with true/false): equal, and equal to onnxruntime on the columns cast to 1.0/0.0."""
    import pandas as pd
    import pyarrow.parquet as pq

    from roost.scoring.api import predict

    X, _, cols = bc_data
    Xb, flags = _as_bools(X[:100], [4, 9])
    df = pd.DataFrame({c: Xb[:, j] for j, c in enumerate(cols)})
    df[cols[4]], df[cols[9]] = flags
    assert df[cols[4]].dtype == bool
    df.to_parquet(tmp_path / "in.parquet", index=False)
    predict(str(pkgs["bc"]), tmp_path / "in.parquet", tmp_path / "out", record=False)
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    scored = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    assert scored[cols[4]].tolist() == flags[0]  # the kept column is the input's, in its order
    out_col = next(c for c in scored.columns if c not in cols)
    predicted = np.asarray(scored[out_col].tolist(), dtype=np.float64).reshape(len(df), -1)[:, -1]
    ip = InProcess(create_app([str(pkgs["bc"])]))
    try:
        body = v2_body(cols, Xb)
        body["inputs"][4]["data"], body["inputs"][9]["data"] = flags
        status, out = _post(ip, "/v2/models/bc/infer", body)
        assert status == 200, out
    finally:
        ip.close()
    want = _ort(pkgs["bc"], cols, Xb)
    np.testing.assert_allclose(out["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predicted, want, rtol=1e-5, atol=1e-6)


def test_an_empty_batch_and_non_object_parameters_get_400s_that_say_so(tmp_path):
    """An all-empty request was told "input 'b' expects booleans but got floats" (numpy reads [] as float64);
    'parameters' that is not an object was ignored (200)."""
    ip = InProcess(create_app([str(mixed_package(tmp_path / "mixed"))]))
    try:
        kinds = {"f": "FP32", "d": "FP64", "i": "INT64", "b": "BOOL", "s": "BYTES"}
        empty = {"inputs": [{"name": k, "datatype": t, "shape": [0], "data": []} for k, t in kinds.items()]}
        status, out = _post(ip, "/v2/models/mixed/infer", empty)
        assert status == 400 and "0 rows" in out["error"], out
        one = {
            "inputs": [
                {"name": k, "datatype": t, "shape": [1], "data": [v]}
                for (k, t), v in zip(kinds.items(), [0.5, 1.0, 3, True, "a"], strict=True)
            ]
        }
        assert _post(ip, "/v2/models/mixed/infer", one)[0] == 200
        for params in ([1], "x", 3):
            status, out = _post(ip, "/v2/models/mixed/infer", {**one, "parameters": params})
            assert status == 400 and "parameters" in out["error"], (params, out)
    finally:
        ip.close()
