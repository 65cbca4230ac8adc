"""Edges of the HTTP protocol a hostile probe found: lenient numbers, truthy strings, multi-member gzip, HEAD."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import orjson
from servekit import InProcess, v2_body

from roost.serve.worker import create_app


def _app(pkgs) -> InProcess:
    return InProcess(create_app([str(pkgs["bc"])]))


def test_inference_header_content_length_is_digits_only(pkgs, bc_data):
    """int() also reads ' 12 ', '+5' and '1_0' (and '-0'): a byte count is plain digits, else a 400 that says so."""
    X, _, cols = bc_data
    head = orjson.dumps(v2_body(cols, X[:2]))
    ip = _app(pkgs)
    try:
        status, _, _ = ip.request(
            "POST", "/v2/models/bc/infer", head, {"inference-header-content-length": str(len(head))}
        )
        assert status == 200
        for value in (f" {len(head)} ", f"+{len(head)}", f"{len(head) // 10}_{len(head) % 10}", "-0", "1e3"):
            status, _, out = ip.request("POST", "/v2/models/bc/infer", head, {"inference-header-content-length": value})
            assert status == 400 and b"digits only" in out, (value, out)
    finally:
        ip.close()


def test_binary_data_flags_must_be_booleans(pkgs, bc_data):
    """The string "no" is truthy: a non-boolean binary_data_output / binary_data is a 400 naming the parameter."""
    X, _, cols = bc_data
    ip = _app(pkgs)
    try:
        for params, out_params, where in (
            ({"binary_data_output": "no"}, None, "binary_data_output"),
            ({"binary_data_output": 1}, None, "binary_data_output"),
            (None, {"binary_data": "yes"}, "binary_data"),
            (None, {"binary_data": None}, "binary_data"),
        ):
            body = v2_body(cols, X[:2])
            if params is not None:
                body["parameters"] = params
            if out_params is not None:
                body["outputs"] = [{"name": "probability", "parameters": out_params}]
            status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(body))
            assert status == 400 and where.encode() in out, (params, out_params, out)
        body = v2_body(cols, X[:2])
        body["parameters"] = {"binary_data_output": False}
        status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(body))
        assert status == 200 and orjson.loads(out)["outputs"][0]["data"]
        body["outputs"] = [{"name": "probability", "parameters": {"binary_data": True}}]
        status, headers, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(body))
        assert status == 200
        cut = int({k.lower(): v for k, v in headers.items()}["inference-header-content-length"])
        assert len(out) - cut == 2 * 4  # two float32 probabilities after the JSON header
    finally:
        ip.close()


def test_gzip_bodies_of_several_members_truncated_or_with_trailing_bytes(pkgs, bc_data):
    """A gzip body may be several members (RFC 1952; `cat a.gz b.gz`): all are decoded, as Python's gzip does. A
    truncated stream or bytes after the last member is a 400 that says so, not a 'not valid JSON' or a silent cut."""
    X, _, cols = bc_data
    raw = orjson.dumps(v2_body(cols, X[:3]))
    ip = _app(pkgs)
    try:
        _, _, want = ip.request("POST", "/v2/models/bc/infer", raw)
        cut = len(raw) // 3
        members = gzip.compress(raw[:cut]) + gzip.compress(raw[cut:])
        assert gzip.decompress(members) == raw  # the reference reading
        status, _, out = ip.request("POST", "/v2/models/bc/infer", members, {"content-encoding": "gzip"})
        assert status == 200 and orjson.loads(out)["outputs"] == orjson.loads(want)["outputs"]
        whole = gzip.compress(raw)
        for body, enc, words in (
            (whole[:-9], "gzip", b"truncated"),
            (whole + b"garbage!", "gzip", b"not valid gzip"),
            (zlib.compress(raw)[:-3], "deflate", b"truncated"),
            (zlib.compress(raw) + b"xx", "deflate", b"follow the end"),
        ):
            status, _, out = ip.request("POST", "/v2/models/bc/infer", body, {"content-encoding": enc})
            assert status == 400 and words in out, (enc, out)
    finally:
        ip.close()


def test_head_is_answered_wherever_get_is(pkgs):
    """HEAD on a GET endpoint is that endpoint's answer (RFC 9110), not a 405; a 405 lists HEAD beside GET."""
    ip = _app(pkgs)
    try:
        for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/metrics", "/v2/models/bc", "/v1/models/bc"):
            get, _, _ = ip.request("GET", path)
            head, _, _ = ip.request("HEAD", path)
            assert get == head == 200, (path, get, head)
        status, headers, _ = ip.request("DELETE", "/v2/health/live")
        assert status == 405 and {k.lower(): v for k, v in headers.items()}["allow"] == "GET, HEAD"
        status, headers, _ = ip.request("HEAD", "/v2/models/bc/infer")
        assert status == 405 and {k.lower(): v for k, v in headers.items()}["allow"] == "POST"
    finally:
        ip.close()


def test_a_multi_member_gzip_body_equals_the_plain_one_on_a_large_request(pkgs, bc_data):
    """Several members, each compressed alone, still answer exactly like the plain body at 64 rows."""
    X, _, cols = bc_data
    raw = orjson.dumps(v2_body(cols, X[:64]))
    parts = np.array_split(np.frombuffer(raw, dtype=np.uint8), 5)
    body = b"".join(gzip.compress(p.tobytes()) for p in parts)
    ip = _app(pkgs)
    try:
        _, _, plain = ip.request("POST", "/v2/models/bc/infer", raw)
        status, _, out = ip.request("POST", "/v2/models/bc/infer", body, {"content-encoding": "gzip"})
        assert status == 200 and orjson.loads(out)["outputs"] == orjson.loads(plain)["outputs"]
    finally:
        ip.close()
