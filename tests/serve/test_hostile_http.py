"""Hostile requests to the V2 binary tensor extension, compressed bodies and the admin/metrics endpoints: each is
a 4xx with a JSON message (never a 5xx), and the worker keeps answering. Guards for what the probe found sound."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest

X = np.array([1.0, 2.0], "<f4").tobytes()
C = b"\1\0\0\0a\1\0\0\0c"  # BYTES ["a", "c"]


def _head(xsize=8, csize=10, xshape=2, **extra):
    return {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [xshape], "parameters": {"binary_data_size": xsize}},
            {"name": "country", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": csize}},
        ],
        **extra,
    }


def _post(http, head, blobs, hlen=None, **headers):
    h = json.dumps(head).encode()
    hdr = {"Inference-Header-Content-Length": str(len(h) if hlen is None else hlen), **headers}
    return http.post("/v2/models/strings/infer", content=h + b"".join(blobs), headers=hdr)


CASES = {
    "header length past the body": (_head(), [X, C], 10**9, "Inference-Header-Content-Length"),
    "negative header length": (_head(), [X, C], -1, "Inference-Header-Content-Length"),
    "header length not a number": (_head(), [X, C], "abc", "integer"),
    "header length 5000 digits": (_head(), [X, C], "9" * 5000, "integer"),
    "header length cuts the JSON": (_head(), [X, C], 10, "not valid JSON"),
    "binary_data_size too big": (_head(xsize=12), [X, C], None, "binary_data_size is 12 bytes"),
    "binary_data_size too small": (_head(xsize=4), [X, C], None, "binary_data_size is 4 bytes"),
    "binary_data_size negative": (_head(xsize=-8), [X, C], None, "non-negative integer"),
    "binary_data_size a string": (_head(xsize="8"), [X, C], None, "non-negative integer"),
    "binary_data_size true": (_head(xsize=True), [X, C], None, "non-negative integer"),
    "binary_data_size 2**70": (_head(xsize=2**70), [X, C], None, "non-negative integer"),
    "body cut short": (_head(), [X, C[:-3]], None, "binary part of the body is 7 bytes"),
    "bytes nobody claims": (_head(), [X, C, b"zz"], None, "not claimed"),
    "BYTES length prefix past the end": (_head(), [X, b"\xff\xff\xff\x7fa\1\0\0\0c"], None, "past the end"),
    "shape product overflow": (_head(xshape=2**62), [X, C], None, "more than"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_binary_extension_lies_are_400(server, case):
    head, blobs, hlen, words = CASES[case]
    with server.client() as http:
        r = _post(http, head, blobs, hlen)
        assert r.status_code == 400 and words in r.json()["error"], (r.status_code, r.text[:300])
        ok = _post(http, _head(), [X, C])
        assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [2.0, 5.0]


JSON_BODY = json.dumps(
    {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [2], "data": [1, 2]},
            {"name": "country", "datatype": "BYTES", "shape": [2], "data": ["a", "c"]},
        ]
    }
).encode()


@pytest.mark.parametrize(
    ("body", "encoding", "status", "words"),
    [
        (gzip.compress(b" " * (64 << 20)), "gzip", 413, "decompressed body exceeds"),  # 64 MiB from ~64 KB
        (zlib.compress(b"[" * (32 << 20)), "deflate", 413, "decompressed body exceeds"),
        (JSON_BODY, "gzip", 400, "not valid gzip"),
        (gzip.compress(JSON_BODY, mtime=0)[:30], "gzip", 400, "truncated"),
        (JSON_BODY, "br", 415, "unsupported Content-Encoding"),
        (JSON_BODY, "gzip, gzip", 415, "unsupported Content-Encoding"),
    ],
)
def test_compressed_bodies(server, body, encoding, status, words):
    with server.client() as http:
        r = http.post("/v2/models/strings/infer", content=body, headers={"Content-Encoding": encoding})
        assert r.status_code == status and words in r.json()["error"], (r.status_code, r.text[:200])
        ok = http.post(
            "/v2/models/strings/infer", content=gzip.compress(JSON_BODY), headers={"Content-Encoding": "gzip"}
        )
        assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [2.0, 5.0]


def test_admin_and_metrics_with_odd_methods_and_queries(server):
    with server.client() as http:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
            for path in ("/metrics", "/admin/status", "/v2/health/live"):
                r = http.request(method, path)
                assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", (method, path, r.status_code)
        r = http.get("/admin/reload")
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        for query, status, words in [
            ("?model=nope", 404, "'nope' is not served"),
            ("?model=strings&model=nope", 404, "'nope' is not served"),
            ("?model=%00", 404, "not served"),
            ("?force=2", 400, "force must be 0 or 1"),
            ("?force=" + "x" * 20_000, 400, "force must be 0 or 1"),
        ]:
            r = http.post("/admin/reload" + query)
            assert r.status_code == status and words in r.json()["error"], (query, r.status_code, r.text[:200])
            assert len(r.content) < 1000  # a long value is not echoed back whole
        bomb = gzip.compress(b"0" * (16 << 20))
        r = http.post("/admin/reload", content=bomb, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413
        for query in ("?name[]=x", "?" + "a=1&" * 2000, "?%ff", "?format=json"):
            r = http.get("/metrics" + query)
            assert r.status_code == 200 and r.text.startswith("# HELP"), query
        assert http.get("/admin/status?verbose=%00").json()["models"]
