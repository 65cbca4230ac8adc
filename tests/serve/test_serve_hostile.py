"""Issue #16: hostile shapes, overflowing values, admin access, Host checks, path-free bodies, Allow on 405, and
issue #18's [N, 1] <-> [-1] column interop. In-process (no sockets): each case is one request to the ASGI app."""

from __future__ import annotations

import json
import shutil
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from servekit import InProcess, column_package, mixed_package, strings_package

from roost.serve.codec import MAX_ELEMENTS, MAX_RANK
from roost.serve.worker import create_app


@pytest.fixture(scope="module")
def hostile_pkgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """strings (x FP32 + country BYTES), mixed (one input per dtype), column (x declared [-1, 1])."""
    root = tmp_path_factory.mktemp("hostile")
    return {
        "strings": strings_package(root / "strings"),
        "mixed": mixed_package(root / "mixed"),
        "column": column_package(root / "column"),
    }


@pytest.fixture(scope="module")
def app(hostile_pkgs: dict[str, Path]):
    ip = InProcess(create_app([str(p) for p in hostile_pkgs.values()]))
    yield ip
    ip.close()


def v2(ip: InProcess, model: str, inputs: list[dict], **kw) -> tuple[int, dict]:
    status, _, body = ip.request("POST", f"/v2/models/{model}/infer", json.dumps({"inputs": inputs}).encode(), **kw)
    return status, json.loads(body)


def tf(ip: InProcess, model: str, doc: dict) -> tuple[int, dict]:
    status, _, body = ip.request("POST", f"/v1/models/{model}:predict", json.dumps(doc).encode())
    return status, json.loads(body)


def binary(ip: InProcess, model: str, inputs: list[dict], blob: bytes) -> tuple[int, dict]:
    head = json.dumps({"inputs": inputs}).encode()
    status, _, body = ip.request(
        "POST",
        f"/v2/models/{model}/infer",
        head + blob,
        headers={"inference-header-content-length": str(len(head)), "content-type": "application/octet-stream"},
    )
    return status, json.loads(body[: len(body)])


X1 = {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}


# ---- shapes are checked before anything is allocated ----------------------------------------------------------
def test_bytes_shape_bomb_is_refused_without_allocating(app):
    """A 208-byte binary request declaring 30 M BYTES elements: 400, and the worker allocates ~nothing for it."""
    country = {"name": "country", "datatype": "BYTES", "shape": [30_000_000], "parameters": {"binary_data_size": 8}}
    tracemalloc.start()
    try:
        status, body = binary(app, "strings", [X1, country], struct.pack("<I", 4) + b"abcd")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 400 and "'country'" in body["error"], body
    assert peak < 10 << 20, f"a 208-byte request made the worker allocate {peak >> 20} MiB"


@pytest.mark.parametrize(
    "shape",
    [[10**12], [1] * 65, [4611686018427387904, 0], [MAX_ELEMENTS + 1], [1] * (MAX_RANK + 1), [2**64, 2**64]],
    ids=["1e12", "rank65", "huge-times-zero", "over-limit", "rank-over-limit", "over-int64"],
)
@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_hostile_shapes_are_400_naming_the_input(app, shape, encoding):
    if encoding == "json":
        status, body = v2(app, "strings", [X1, {"name": "country", "datatype": "BYTES", "shape": shape, "data": []}])
    else:
        country = {"name": "country", "datatype": "BYTES", "shape": shape, "parameters": {"binary_data_size": 0}}
        status, body = binary(app, "strings", [X1, country], b"")
    assert status == 400 and "'country'" in body["error"], body


def test_shape_must_match_the_data_sent(app):
    status, body = v2(app, "strings", [X1, {"name": "country", "datatype": "BYTES", "shape": [1, 2], "data": ["a"]}])
    assert status == 400 and "needs 2 values" in body["error"]
    fp = {"name": "x", "datatype": "FP32", "shape": [3], "parameters": {"binary_data_size": 8}}
    status, body = binary(app, "strings", [fp], b"\0" * 8)
    assert status == 400 and "'x'" in body["error"]


# ---- values that do not fit the declared type --------------------------------------------------------------------
def mixed_row(**over: object) -> dict:
    row = {"f": 1.0, "d": 0.5, "i": 2, "b": True, "s": "a"}
    row.update(over)
    return row


V2_TYPES = {"f": "FP32", "d": "FP64", "i": "INT64", "b": "BOOL", "s": "BYTES"}


def v2_mixed(row: dict) -> list[dict]:
    return [{"name": k, "datatype": V2_TYPES[k], "shape": [1], "data": [v]} for k, v in row.items()]


@pytest.mark.parametrize(
    "name,value",
    [("f", 3.4e39), ("f", -3.4e39), ("i", 2**70), ("i", -(2**70)), ("i", 2**63), ("i", 1.5)],
    ids=["fp32-over", "fp32-under", "int64-2^70", "int64-neg", "int64-2^63", "int64-fraction"],
)
@pytest.mark.parametrize("protocol", ["v2", "tf-rows", "tf-columns"])
def test_values_out_of_range_are_400_naming_the_input(app, name, value, protocol):
    row = mixed_row(**{name: value})
    if protocol == "v2":
        status, body = v2(app, "mixed", v2_mixed(row))
    elif protocol == "tf-rows":
        status, body = tf(app, "mixed", {"instances": [row]})
    else:
        status, body = tf(app, "mixed", {"inputs": {k: [v] for k, v in row.items()}})
    assert status == 400, body
    assert repr(name) in body["error"]


def test_fp32_largest_finite_value_is_accepted(app):
    """The boundary: float32's max passes (compare with numpy's own finfo), only beyond it is refused."""
    big = float(np.finfo(np.float32).max)
    status, body = v2(app, "mixed", v2_mixed(mixed_row(f=big, d=0.0, i=0, b=False, s="z")))
    assert status == 200, body
    assert body["outputs"][0]["data"][0] == pytest.approx(big, rel=1e-6)


def test_binary_infinity_refused_nan_is_missing(app):
    """Binary FP32/FP64 data: infinity is a 400 like on JSON; NaN is the missing value (JSON null)."""
    fp = {"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}
    country = {"name": "country", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    status, body = binary(app, "strings", [fp, country], np.array([1.0, np.inf], "<f4").tobytes())
    assert status == 400 and "'x'" in body["error"], body
    status, body = binary(app, "strings", [fp, country], np.array([1.0, np.nan], "<f4").tobytes())
    assert status == 200, body
    json_null = v2(app, "strings", [{**X1, "shape": [2], "data": [1.0, None]}, country])
    assert json_null[0] == 200
    assert body["outputs"][0]["data"] == json_null[1]["outputs"][0]["data"] == [2.0, None]  # 1 + code(a); NaN


@pytest.mark.parametrize("protocol", ["v2", "tf"])
def test_null_policy(app, protocol):
    """null = missing: NaN for floats, -1 for ints, '' for strings; booleans cannot be missing (400)."""
    row = mixed_row(f=None, i=None, s=None)
    status, body = v2(app, "mixed", v2_mixed(row)) if protocol == "v2" else tf(app, "mixed", {"instances": [row]})
    assert status == 200, body
    ys = body["outputs"][0]["data"] if protocol == "v2" else body["predictions"]
    assert ys == [None]  # NaN + ... = NaN, sent back as JSON null
    row = mixed_row(i=None, s=None)  # f present: y = 1 + 0.5 + (-1) + 1 + code('') = 1.5
    status, body = v2(app, "mixed", v2_mixed(row)) if protocol == "v2" else tf(app, "mixed", {"instances": [row]})
    ys = body["outputs"][0]["data"] if protocol == "v2" else body["predictions"]
    assert status == 200 and ys == [pytest.approx(1.0 + 0.5 - 1 + 1 + 0)]
    bad = mixed_row(b=None)
    status, body = v2(app, "mixed", v2_mixed(bad)) if protocol == "v2" else tf(app, "mixed", {"instances": [bad]})
    assert status == 400 and "'b'" in body["error"]


# ---- [N, 1] <-> [-1] ----------------------------------------------------------------------------------------------
def test_column_sent_as_n_by_1_for_a_1d_input(app):
    x = [1.0, 2.0, 3.0]
    country = ["a", "b", "q"]
    want = (np.array(x, np.float32) + np.array([1, 2, 0], np.float32)).tolist()  # x + code(country)
    status, body = v2(
        app,
        "strings",
        [
            {"name": "x", "datatype": "FP32", "shape": [3, 1], "data": [[v] for v in x]},
            {"name": "country", "datatype": "BYTES", "shape": [3, 1], "data": country},
        ],
    )
    assert status == 200 and body["outputs"][0]["data"] == want, body
    status, body = tf(app, "strings", {"inputs": {"x": [[v] for v in x], "country": [[c] for c in country]}})
    assert status == 200 and body["outputs"] == want, body


def test_1d_column_for_an_n_by_1_input(app):
    x = [1.5, -2.0, 4.0]
    status, body = v2(app, "column", [{"name": "x", "datatype": "FP32", "shape": [3], "data": x}])
    assert status == 200, body
    assert body["outputs"][0]["shape"] == [3, 1] and body["outputs"][0]["data"] == [2 * v for v in x]
    status, body = tf(app, "column", {"instances": x})
    assert status == 200 and body["predictions"] == [[2 * v] for v in x], body
    # a real 2-D mismatch is still a 400
    status, body = v2(app, "column", [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": x}])
    assert status == 400 and "'x'" in body["error"]


# ---- admin, tokens, Host, paths, 405 ------------------------------------------------------------------------------
def test_admin_needs_token_even_with_public_inference(hostile_pkgs):
    ip = InProcess(create_app([str(hostile_pkgs["strings"])], token="t0ken-123", public_inference=True))
    try:
        auth = {"authorization": "Bearer t0ken-123"}
        assert ip.request("GET", "/admin/status")[0] == 401
        assert ip.request("POST", "/admin/reload")[0] == 401
        assert ip.request("GET", "/metrics")[0] == 401
        assert ip.request("GET", "/admin/status", headers=auth)[0] == 200
        assert ip.request("GET", "/admin/status", headers={"authorization": "Bearer t0ken-12"})[0] == 401
        body = {"instances": [{"x": 1.0, "country": "a"}]}
        assert ip.request("POST", "/v1/models/strings:predict", json.dumps(body).encode())[0] == 200
    finally:
        ip.close()
    ip = InProcess(create_app([str(hostile_pkgs["strings"])], token="t0ken-123"))
    try:
        body = {"instances": [{"x": 1.0, "country": "a"}]}
        assert ip.request("POST", "/v1/models/strings:predict", json.dumps(body).encode())[0] == 401
        assert ip.request("GET", "/v2/health/ready")[0] == 200
    finally:
        ip.close()


def test_admin_without_token_answers_only_local_clients(app):
    assert app.request("GET", "/admin/status", client=("10.1.2.3", 5555))[0] == 403
    assert app.request("POST", "/admin/reload", client=("10.1.2.3", 5555))[0] == 403
    assert app.request("GET", "/admin/status", client=("127.0.0.1", 5555))[0] == 200
    assert app.request("POST", "/v2/models/column/infer", b"{}", client=("10.1.2.3", 5555))[0] == 400  # inference


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:8080", "127.0.0.1.evil.com", ""])
def test_host_not_in_allow_list_is_refused(app, host):
    """DNS rebinding: a page on evil.example.com resolving to 127.0.0.1 must not reach a loopback server."""
    for method, path in [("GET", "/admin/status"), ("POST", "/admin/reload"), ("GET", "/v2/models/column")]:
        status, _, body = app.request(method, path, headers={"host": host})
        assert status == 400 and b"Host" in body, (method, path, status)
    for ok in ["127.0.0.1:9", "localhost", "[::1]:8080"]:
        assert app.request("GET", "/v2/models/column", headers={"host": ok})[0] == 200


def test_allow_host_option(hostile_pkgs):
    ip = InProcess(create_app([str(hostile_pkgs["column"])], host="0.0.0.0", allowed_hosts=["serve.example.com"]))
    try:
        assert ip.request("GET", "/v2/models/column", headers={"host": "serve.example.com:443"})[0] == 200
        assert ip.request("GET", "/v2/models/column", headers={"host": "other.example.com"})[0] == 400
    finally:
        ip.close()
    ip = InProcess(create_app([str(hostile_pkgs["column"])], host="0.0.0.0"))  # opened: any Host by default
    try:
        assert ip.request("GET", "/v2/models/column", headers={"host": "10.0.0.7:8080"})[0] == 200
    finally:
        ip.close()


def test_no_filesystem_paths_in_responses(hostile_pkgs, tmp_path):
    pkg = tmp_path / "deep" / "folder" / "churn"
    shutil.copytree(hostile_pkgs["strings"], pkg)
    ip = InProcess(create_app([str(pkg)]))
    try:
        texts = [ip.request("GET", "/admin/status")[2]]
        (pkg / "signature.json").unlink()  # the next reload fails with an error about that file
        status, _, body = ip.request("POST", "/admin/reload", query=b"force=1")
        assert status == 200 and b"signature.json" in body, body
        texts += [body, ip.request("GET", "/admin/status")[2]]
        texts.append(ip.request("POST", "/v1/models/churn/labels/prod:predict", b"{}")[2])
        for text in texts:
            assert str(tmp_path).encode() not in text and b"/deep/folder" not in text, text
    finally:
        ip.close()


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("PUT", "/admin/status", "GET, HEAD"),
        ("GET", "/admin/reload", "POST"),
        ("DELETE", "/v2/health/live", "GET, HEAD"),
        ("GET", "/v2/models/column/infer", "POST"),
        ("POST", "/v2/models/column", "GET, HEAD"),
        ("GET", "/v1/models/column:predict", "POST"),
        ("PATCH", "/v1/models/column", "GET, HEAD"),
    ],
)
def test_405_carries_allow(app, method, path, allow):
    status, headers, _ = app.request(method, path)
    assert status == 405 and headers.get("allow") == allow


def test_python_m_roost_serve_does_not_import_the_cli():
    import subprocess
    import sys

    code = (
        "import runpy, sys\n"
        "sys.argv = ['roost-serve', '--help']\n"
        "try:\n    runpy.run_module('roost.serve', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('CLI', sorted(m for m in sys.modules if m.startswith('roost.cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "--token" in out.stdout  # the command really ran
    assert out.stdout.strip().splitlines()[-1] == "CLI []"
