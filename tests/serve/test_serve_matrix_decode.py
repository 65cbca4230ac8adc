"""The one-matrix V2 decoder (#18 item 5, 64 rows): all-FP32 column requests become one float32 (inputs x rows)
matrix; answers equal roost.load_model(...).predict, other requests take the general path, malformed ones get 400."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from servekit import InProcess, mixed_package, v2_body

from roost.modelpkg import load_model
from roost.serve.protocols import v2
from roost.serve.worker import create_app


@pytest.fixture
def bc_app(pkgs):
    app = create_app([str(pkgs["bc"])])
    ip = InProcess(app)
    yield app, ip
    ip.close()


def _post(ip: InProcess, body: object, model: str = "bc") -> tuple[int, dict]:
    status, _, out = ip.request("POST", f"/v2/models/{model}/infer", orjson.dumps(body))
    return status, orjson.loads(out)


def test_64_rows_equal_load_model_predict_in_any_input_order(bc_app, pkgs, bc_data):
    app, ip = bc_app
    X, _, cols = bc_data
    rows = X[np.random.default_rng(1).integers(0, len(X), 64)]
    want = load_model(pkgs["bc"]).predict(pd.DataFrame(rows, columns=cols))  # P(class 1), the library's reference
    body = v2_body(cols, rows)
    shuffled = {"inputs": [body["inputs"][j] for j in np.random.default_rng(2).permutation(len(cols))]}
    for sent in (body, shuffled):
        got = v2.fast_inputs(app.repo.get("bc"), sent["inputs"])
        assert got is not None and got[1] == 64  # the one-matrix path took it
        for j, c in enumerate(cols):
            np.testing.assert_array_equal(got[0][c], rows[:, j])
        status, out = _post(ip, sent)
        assert status == 200, out
        prob = next(o for o in out["outputs"] if o["name"] == "probability")
        assert prob["shape"] == [64]
        np.testing.assert_allclose(prob["data"], np.asarray(want).reshape(-1), rtol=0, atol=1e-6)
        label = next(o for o in out["outputs"] if o["name"] == "label")
        assert label["data"] == [int(p >= 0.5) for p in prob["data"]]


def test_mixed_dtypes_take_the_general_path_and_answer(tmp_path):
    pkg = mixed_package(tmp_path / "mixed")
    app = create_app([str(pkg)])
    ip = InProcess(app)
    try:
        assert app.repo.get("mixed").package.float_columns is None
        body = {
            "inputs": [
                {"name": "f", "datatype": "FP32", "shape": [3], "data": [0.5, 1.5, -2.0]},
                {"name": "d", "datatype": "FP64", "shape": [3], "data": [1.0, 2.0, 3.0]},
                {"name": "i", "datatype": "INT64", "shape": [3], "data": [10, 20, 30]},
                {"name": "b", "datatype": "BOOL", "shape": [3], "data": [True, False, True]},
                {"name": "s", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "zzz"]},
            ]
        }
        status, out = _post(ip, body, "mixed")
        assert status == 200, out
        # y = f + d + i + b + code(s), code a = 1, b = 2, else 0: computed by hand
        want = [0.5 + 1 + 10 + 1 + 1, 1.5 + 2 + 20 + 0 + 2, -2.0 + 3 + 30 + 1 + 0]
        np.testing.assert_allclose(out["outputs"][0]["data"], want, rtol=0, atol=1e-6)
    finally:
        ip.close()


def _variant(cols: list[str], X: np.ndarray, change) -> dict:
    body = v2_body(cols, X)
    change(body["inputs"])
    return body


def test_malformed_64_row_bodies_fall_back_and_get_400_naming_the_problem(bc_app, bc_data):
    app, ip = bc_app
    X, _, cols = bc_data
    rows = X[:64]
    cases = {
        "ragged: one column one value short": (
            _variant(cols, rows, lambda i: i[3]["data"].pop()),
            [cols[3], "64"],
        ),
        "wrong length: shape says 64, data has 65": (
            _variant(cols, rows, lambda i: i[5]["data"].append(1.0)),
            [cols[5], "64"],
        ),
        "every shape says 63": (
            _variant(cols, rows, lambda i: [x.update(shape=[63]) for x in i]),
            ["63"],
        ),
        "NaN as a string": (
            _variant(cols, rows, lambda i: i[7]["data"].__setitem__(10, "NaN")),
            [cols[7]],
        ),
        "a number as a string": (
            _variant(cols, rows, lambda i: i[8]["data"].__setitem__(0, "1.5")),
            [cols[8]],
        ),
        "missing input": (
            _variant(cols, rows, lambda i: i.pop(12)),
            ["missing input", cols[12]],
        ),
        "nested data": (
            _variant(cols, rows, lambda i: i[1]["data"].__setitem__(2, [1.0, 2.0])),
            [cols[1]],
        ),
        "beyond float32": (
            _variant(cols, rows, lambda i: i[4]["data"].__setitem__(0, 1e39)),
            [cols[4], "range"],
        ),
        "unknown input instead of one": (
            _variant(cols, rows, lambda i: i[0].update(name="nope")),
            ["nope"],
        ),
        "name is not a string": (
            _variant(cols, rows, lambda i: i[0].update(name=["x"])),
            ["name"],
        ),
    }
    model = app.repo.get("bc")
    for why, (body, words) in cases.items():
        assert v2.fast_inputs(model, body["inputs"]) is None, why
        status, out = _post(ip, body)
        assert status == 400, (why, out)
        for w in words:
            assert w in out["error"], (why, out["error"])
    # a body that is not JSON at all (NaN is not a JSON number) is refused before any decoding
    raw = orjson.dumps(v2_body(cols, rows)).replace(b"[", b"[NaN,", 2)
    status, _, out = ip.request("POST", "/v2/models/bc/infer", raw)
    assert status == 400 and b"not valid JSON" in out
