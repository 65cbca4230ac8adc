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


def test_one_matrix_path_finds_a_boolean_hidden_among_ones_and_zeros(pkgs, bc_data):
    """The one-matrix decoder looks for booleans only where the packed value is 1.0 or 0.0: a body full of real
    1.0/0.0/1/0 numbers still answers (and equals the same body sent as exact floats), and a true/false among them
    is a 400 wherever it sits."""
    import numpy as np

    X, _, cols = bc_data
    ip = InProcess(create_app([str(pkgs["bc"])]))
    try:
        base = v2_body(cols, X[:64])
        for j in (3, 7):  # two columns of ones and zeros, as ints and floats
            base["inputs"][j]["data"] = [(1 if i % 3 else 0) if j == 3 else float(i % 2) for i in range(64)]
        status, plain = _post(ip, "/v2/models/bc/infer", base)
        assert status == 200, plain
        as_floats = orjson.loads(orjson.dumps(base))
        for inp in as_floats["inputs"]:
            inp["data"] = [float(v) for v in inp["data"]]
        assert _post(ip, "/v2/models/bc/infer", as_floats)[1]["outputs"] == plain["outputs"]
        rng = np.random.default_rng(0)
        for _ in range(6):
            body = orjson.loads(orjson.dumps(base))
            j, at = int(rng.choice([3, 7])), int(rng.integers(64))
            body["inputs"][j]["data"][at] = bool(body["inputs"][j]["data"][at])  # same value, as a JSON boolean
            status, out = _post(ip, "/v2/models/bc/infer", body)
            assert status == 400 and cols[j] in out["error"] and "bool" in out["error"], (j, at, out)
        too_big = orjson.loads(orjson.dumps(base))
        too_big["inputs"][5]["data"][9] = 1e39  # no float32 holds it
        status, out = _post(ip, "/v2/models/bc/infer", too_big)
        assert status == 400 and cols[5] in out["error"], out
    finally:
        ip.close()


def test_holds_bool_equals_a_scan_of_every_item():
    """v2.holds_bool against the brute-force answer on random mixes of floats, ints, 0/1 and booleans."""
    import numpy as np

    from roost.serve.protocols import v2

    rng = np.random.default_rng(1)
    pool = [0.0, 1.0, 0, 1, -0.0, 0.5, 2.0, 7, True, False]
    for _ in range(300):
        items = [pool[i] for i in rng.integers(len(pool), size=int(rng.integers(1, 40)))]
        if rng.random() < 0.5:
            items = [v for v in items if v is not True and v is not False] or [0.5]
        packed = np.frombuffer(v2.float32_packer(len(items)).pack(*items), dtype="<f4")
        assert v2.holds_bool(items, packed) == any(type(v) is bool for v in items), items
