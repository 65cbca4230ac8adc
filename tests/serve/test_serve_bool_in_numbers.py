"""A JSON boolean inside a numeric input is a 400, not a silent 1.0/0 (numpy's asarray([0.5, True]) is
[0.5, 1.0] and array('f') takes True as 1.0): KServe V2 (one-matrix and general decoders) and TF-Serving REST."""

from __future__ import annotations

import orjson
from servekit import InProcess, mixed_package, v2_body

from roost.serve.worker import create_app


def _post(ip: InProcess, path: str, body: object) -> tuple[int, dict]:
    status, _, out = ip.request("POST", path, orjson.dumps(body))
    return status, orjson.loads(out)


def test_a_boolean_among_fp32_numbers_is_a_400_on_the_one_matrix_path(pkgs, bc_data):
    X, _, cols = bc_data
    ip = InProcess(create_app([str(pkgs["bc"])]))
    try:
        for at, value in ((10, True), (0, 0.5), (63, False)):
            body = v2_body(cols, X[:64])
            body["inputs"][4]["data"][at] = value
            if value is True or value is False:
                status, out = _post(ip, "/v2/models/bc/infer", body)
                assert status == 400, (at, value, out)
                assert cols[4] in out["error"] and "bool" in out["error"], out["error"]
            else:  # the same body with a number there answers
                assert _post(ip, "/v2/models/bc/infer", body)[0] == 200
        # a boolean in a V2 body elsewhere (parameters) does not turn numbers away
        body = v2_body(cols, X[:64])
        body["parameters"] = {"binary_data_output": False}
        assert _post(ip, "/v2/models/bc/infer", body)[0] == 200
        # TF-Serving REST: row instances and columnar inputs
        rows = [dict(zip(cols, map(float, r), strict=True)) for r in X[:3]]
        rows[1][cols[2]] = True
        status, out = _post(ip, "/v1/models/bc:predict", {"instances": rows})
        assert status == 400 and cols[2] in out["error"], out
        colmajor = {c: [float(v) for v in X[:3, j]] for j, c in enumerate(cols)}
        colmajor[cols[6]][2] = False
        status, out = _post(ip, "/v1/models/bc:predict", {"inputs": colmajor})
        assert status == 400 and cols[6] in out["error"], out
    finally:
        ip.close()


def test_a_boolean_among_numbers_is_a_400_on_the_general_path(tmp_path):
    ip = InProcess(create_app([str(mixed_package(tmp_path / "mixed"))]))
    try:
        good = {
            "f": ("FP32", [0.5, 1.5, -2.0]),
            "d": ("FP64", [1.0, 2.0, 3.0]),
            "i": ("INT64", [10, 20, 30]),
            "b": ("BOOL", [True, False, True]),
            "s": ("BYTES", ["a", "b", "zzz"]),
        }

        def body(**bad: list) -> dict:
            cols = {**{k: v[1] for k, v in good.items()}, **bad}
            return {"inputs": [{"name": k, "datatype": good[k][0], "shape": [3], "data": cols[k]} for k in good]}

        assert _post(ip, "/v2/models/mixed/infer", body())[0] == 200
        for name, data in (("f", [0.5, True, -2.0]), ("d", [False, 2.0, 3.0]), ("i", [10, True, 30])):
            status, out = _post(ip, "/v2/models/mixed/infer", body(**{name: data}))
            assert status == 400, (name, out)
            assert repr(name) in out["error"] and "bool" in out["error"], out["error"]
    finally:
        ip.close()


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
