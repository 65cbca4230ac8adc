"""`roost serve` under roost's server policy (issue 30, item 3; docs/security.md): a page in the local browser
cannot reload models (cross-site POST, text/plain POST) nor reach an opened server through a rebound name, while
CLI clients, TF-Serving-style `curl -d` and the V2 binary extension keep working."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from servekit import InProcess, column_package

from roost.serve.worker import create_app

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return column_package(tmp_path_factory.mktemp("crosssite") / "column")


@pytest.fixture
def app(pkg):
    ip = InProcess(create_app([str(pkg)]))
    yield ip
    ip.close()


def _v2(x: list[float]) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(x), 1], "data": x}]}).encode()


def test_cross_site_reload_is_refused(app) -> None:
    """Before: a page in the local browser could POST /admin/reload (a loopback client, no token needed)."""
    for headers in ({"origin": EVIL}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}, {"referer": EVIL + "/x"}):
        status, _, body = app.request("POST", "/admin/reload", headers=headers, query=b"force=1")
        assert status == 403 and b"cross-site" in body, (headers, status)
    assert app.request("POST", "/admin/reload", headers={"origin": "http://127.0.0.1:8080"})[0] == 200


def test_text_plain_reload_is_refused(app) -> None:
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b"):
        status, _, body = app.request("POST", "/admin/reload", b"x", headers={"content-type": ctype})
        assert status == 415 and b"Content-Type" in body, (ctype, status)
    assert app.request("POST", "/admin/reload")[0] == 200  # curl -X POST: no body, no type
    assert app.request("POST", "/admin/reload", b"{}", headers={"content-type": "application/json"})[0] == 200


def test_cross_site_inference_is_refused_but_clients_pass(app) -> None:
    body = _v2([1.0, 2.0])
    assert app.request("POST", "/v2/models/column/infer", body, headers={"origin": EVIL})[0] == 403
    assert app.request("POST", "/v2/models/column/infer", body)[0] == 200
    # `curl -d` sends a form type; TF-Serving's docs do exactly that: inference is no state change, so it passes
    form = {"content-type": "application/x-www-form-urlencoded"}
    status, _, out = app.request("POST", "/v1/models/column:predict", b'{"instances": [[1.0]]}', headers=form)
    assert status == 200 and json.loads(out)["predictions"] == [[2.0]]
    # the V2 binary extension: a JSON header then raw little-endian tensor bytes
    head = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 1], "parameters": {"binary_data_size": 8}}]}
    ).encode()
    raw = np.array([1.0, 3.0], dtype="<f4").tobytes()
    binary = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))}
    status, _, out = app.request("POST", "/v2/models/column/infer", head + raw, headers=binary)
    assert status == 200, out[:300]


def test_opened_server_refuses_rebound_names(pkg) -> None:
    """Before: on --host 0.0.0.0 any Host was answered, so a page on evil.example rebound to the server's address
    could use a browser inside the network. Now: IP literals, loopback and this machine's names, --allow-host."""
    import socket

    ip = InProcess(create_app([str(pkg)], host="0.0.0.0"))
    try:
        for host in ("evil.example", "evil.example:8080"):
            assert ip.request("GET", "/v2/models/column", headers={"host": host})[0] == 400, host
        for host in ("10.0.0.7:8080", "[fd00::1]:8080", "localhost:8080", socket.gethostname()):
            assert ip.request("GET", "/v2/models/column", headers={"host": host})[0] == 200, host
    finally:
        ip.close()
    ip = InProcess(create_app([str(pkg)], host="0.0.0.0", allowed_hosts=["*"]))
    try:
        assert ip.request("GET", "/v2/models/column", headers={"host": "anything.example"})[0] == 200
    finally:
        ip.close()


def test_token_still_required_where_configured(pkg) -> None:
    ip = InProcess(create_app([str(pkg)], token="t0ken-123"))
    try:
        assert ip.request("POST", "/admin/reload")[0] == 401
        auth = {"authorization": "Bearer t0ken-123"}
        assert ip.request("POST", "/admin/reload", headers=auth)[0] == 200
        assert ip.request("POST", "/admin/reload", headers={**auth, "origin": EVIL})[0] == 403
    finally:
        ip.close()
