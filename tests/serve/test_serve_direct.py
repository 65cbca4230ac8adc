"""The direct V2 infer route (roost.serve.direct, #35): every request to /v2/models/.../infer, well-formed or hostile,
gets the same status, headers, body and metrics from it as from the general router it bypasses."""

from __future__ import annotations

import gzip

import numpy as np
import orjson
import pytest
from servekit import InProcess, v2_body

from roost.serve.worker import create_app

TOKEN = "s3cret-token"


class GeneralRoute:
    """The app with every HTTP request sent through ServeApp._http (the router), never the direct route."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            return await self.app._http(scope, receive, send)
        return await self.app(scope, receive, send)

    async def aclose(self) -> None:
        await self.app.aclose()


def _requests(cols: list[str], X: np.ndarray) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(why, path, body, headers): good requests and hostile ones (protocol edges, limits, gate, ids)."""
    good = orjson.dumps(v2_body(cols, X[:2]))
    one = v2_body(cols, X[:1])
    auth = {"authorization": f"Bearer {TOKEN}"}

    def variant(change) -> bytes:
        body = v2_body(cols, X[:2])
        change(body)
        return orjson.dumps(body)

    p = "/v2/models/bc/infer"
    return [
        ("ok", p, good, auth),
        ("ok, client id", p, good, {**auth, "x-request-id": "trace-1"}),
        ("ok, body id", p, orjson.dumps({**one, "id": "body-7"}), auth),
        ("ok, inputs reversed", p, orjson.dumps({"inputs": one["inputs"][::-1]}), auth),
        ("ok, version", "/v2/models/bc/versions/1/infer", good, auth),
        ("ok, binary output", p, orjson.dumps({**one, "parameters": {"binary_data_output": True}}), auth),
        ("ok, gzip", p, gzip.compress(good), {**auth, "content-encoding": "gzip"}),
        ("no token", p, good, {}),
        ("wrong token", p, good, {"authorization": "Bearer nope"}),
        ("foreign Host", p, good, {**auth, "host": "evil.example"}),
        ("cross-site Origin", p, good, {**auth, "origin": "https://evil.example"}),
        ("bad X-Request-Id", p, good, {**auth, "x-request-id": "a b<script>"}),
        ("bad body id", p, orjson.dumps({**one, "id": "x" * 200}), auth),
        ("unknown model", "/v2/models/nope/infer", good, auth),
        ("unknown version", "/v2/models/bc/versions/9/infer", good, auth),
        ("bad path", "/v2/models/bc/x/infer", good, auth),
        ("no model name", "/v2/models/infer", good, auth),
        ("not JSON", p, b"{not json", auth),
        ("not an object", p, b"[1, 2]", auth),
        ("no inputs", p, b"{}", auth),
        ("parameters not an object", p, orjson.dumps({**one, "parameters": [1]}), auth),
        ("missing input", p, variant(lambda b: b["inputs"].pop()), auth),
        ("duplicate input", p, variant(lambda b: b["inputs"].__setitem__(-1, dict(b["inputs"][0]))), auth),
        ("string value", p, variant(lambda b: b["inputs"][3]["data"].__setitem__(0, "1.5")), auth),
        ("ok, null is a missing value", p, variant(lambda b: b["inputs"][3]["data"].__setitem__(0, None)), auth),
        ("beyond float32", p, variant(lambda b: b["inputs"][4]["data"].__setitem__(0, 1e39)), auth),
        ("ragged", p, variant(lambda b: b["inputs"][5]["data"].append(1.0)), auth),
        ("FP64", p, variant(lambda b: b["inputs"][0].update(datatype="FP64")), auth),
        ("shape as text", p, variant(lambda b: b["inputs"][0].update(shape="2")), auth),
        ("unknown output", p, orjson.dumps({**one, "outputs": [{"name": "nope"}]}), auth),
        ("binary header not digits", p, good, {**auth, "inference-header-content-length": "+5"}),
        ("binary header past body", p, good, {**auth, "inference-header-content-length": "999999"}),
        ("body over the limit", p, good, {**auth, "content-length": str(10 << 20)}),
        ("bad gzip", p, b"not gzip at all", {**auth, "content-encoding": "gzip"}),
        ("unknown encoding", p, good, {**auth, "content-encoding": "br"}),
    ]


COUNTED = (
    "roost_requests_total",
    "roost_errors_total",
    "roost_model_version_requests_total",
    "roost_shadow_requests_total",
    "roost_request_log_rows_total",
)


def _counts(app) -> dict:
    """The request, error, version, shadow-mirror and request-log counters' samples (labels -> count)."""
    return {
        (s.name, *sorted(s.labels.items())): s.value
        for m in app.metrics.registry.collect()
        for s in m.samples
        if s.name in COUNTED
    }


@pytest.mark.parametrize("extra", ["", "shadow", "request log"])
def test_direct_and_general_routes_answer_alike(pkgs, bc_data, tmp_path, extra):
    """(With a shadow or the request log the decoded inputs are read by name: the matrix gets its views.)"""
    X, _, cols = bc_data
    more = {
        "": {},
        "shadow": {"shadow": [f"bc={pkgs['bc2']}=100"]},
        "request log": {"log_requests": 1.0},
    }[extra]
    apps = [
        create_app([f"bc={pkgs['bc']}"], token=TOKEN, max_body_mb=1, log_dir=str(tmp_path / f"log{i}"), **more)
        for i in range(2)
    ]
    assert apps[0].direct("/v2/models/bc/infer") and not apps[0].direct("/v2/models/bc")
    direct, general = InProcess(apps[0]), InProcess(GeneralRoute(apps[1]))
    try:
        for why, path, body, headers in _requests(cols, X):
            got = [ip.request("POST", path, body, headers) for ip in (direct, general)]
            (s1, h1, b1), (s2, h2, b2) = got
            r1, r2 = h1.pop("x-request-id"), h2.pop("x-request-id")
            if r1 != r2:  # not the client's id (none sent, or refused): a generated one, also in an answer's "id"
                assert len(r1) == len(r2) == 32 and int(r1, 16) >= 0 and int(r2, 16) >= 0, why
                b1, b2 = b1.replace(r1.encode(), b"<id>"), b2.replace(r2.encode(), b"<id>")
            elif "x-request-id" in headers or b'"id"' in body:
                assert r1 in (headers.get("x-request-id"), "body-7"), why
            assert (s1, h1, b1) == (s2, h2, b2), why
            assert s1 == 200 if why.startswith("ok") else 400 <= s1 < 500, (why, s1, b1)
    finally:
        direct.close()  # (waits for the shadow mirrors and writes the request log)
        general.close()
    counts = _counts(apps[0])
    assert counts == _counts(apps[1])
    oks = sum(why.startswith("ok") for why, *_ in _requests(cols, X))
    if extra == "shadow":  # every answered request was mirrored: its inputs reached the shadow by name
        assert (
            counts[("roost_shadow_requests_total", ("model", "bc"), ("outcome", "mirrored"), ("version", "1"))] == oks
        )
    if extra == "request log":  # and the request log got every row of them
        assert counts[("roost_request_log_rows_total", ("model", "bc"))] >= oks
