"""The ask/tell service under roost's server policy (issue 30, item 3; docs/security.md): a web page the user
visits must not create studies or tell results — neither by a cross-site POST (CSRF) nor by rebinding its name to
127.0.0.1 (DNS rebinding) — while JSON clients (the roost client, curl, scripts) keep working."""

from __future__ import annotations

import json
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from roost.tune.engine import Engine
from roost.tune.service import create_app

SPACE = {"lr": {"loguniform": [1e-4, 1e-1]}}
LOCAL = "http://127.0.0.1:8765"
BODY = json.dumps({"space": SPACE, "sampler": "random"}).encode()


@pytest.fixture
def api(ws):
    with TestClient(create_app(Engine()), base_url=LOCAL) as c:
        yield c


def _count(api) -> int:
    return len(api.get("/studies").json()["studies"])


def test_cross_site_post_is_refused(api) -> None:
    for headers in (
        {"Origin": "http://evil.example", "content-type": "application/json"},
        {"Origin": "null", "content-type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "content-type": "application/json"},
    ):
        r = api.post("/studies", content=BODY, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
    assert _count(api) == 0


def test_text_plain_post_is_refused(api) -> None:
    """text/plain (or a form) is what a page can POST cross-site without a preflight: 415, nothing created."""
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = api.post("/studies", content=BODY, headers={"content-type": ctype})
        assert r.status_code == 415 and "application/json" in r.json()["hint"], ctype
    r = api.post("/studies", content=BODY)  # a body with no type at all
    assert r.status_code == 415
    assert _count(api) == 0


def test_foreign_host_is_refused(api) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 reaches the port, but names the wrong host."""
    for host in ("evil.example", "evil.example:8765", "127.0.0.1.evil.example"):
        assert api.get("/studies", headers={"Host": host}).status_code == 400, host
        assert (
            api.post("/studies", content=BODY, headers={"Host": host, "content-type": "application/json"}).status_code
            == 400
        )
    assert _count(api) == 0


def test_legit_json_clients_pass(api) -> None:
    r = api.post("/studies", json={"space": SPACE, "sampler": "random"}, headers={"Origin": LOCAL})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert api.post(f"/studies/{sid}/ask").status_code == 200  # curl -X POST: no body, no type
    for host in ("localhost:8765", "[::1]:8765", "127.0.0.1"):
        assert api.get("/studies", headers={"Host": host}).status_code == 200


def test_token_is_required_where_configured(ws) -> None:
    with TestClient(create_app(Engine(), token="s3cret-tok"), base_url=LOCAL) as c:
        assert c.post("/studies", json={"space": SPACE}).status_code == 401
        assert (
            c.post("/studies", json={"space": SPACE}, headers={"authorization": "Bearer s3cret-to"}).status_code == 401
        )
        ok = c.post("/studies", json={"space": SPACE}, headers={"authorization": "Bearer s3cret-tok"})
        assert ok.status_code == 201


def test_serve_binds_the_policy_of_its_address(ws, monkeypatch) -> None:
    """`roost tune serve --host H --allow-host N` answers the loopback names, H and N only."""
    import uvicorn

    from roost.tune import service

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    service.serve(host="10.1.2.3", port=8765, allow_hosts=["tune.example.com"])
    with TestClient(seen["app"], base_url="http://10.1.2.3:8765") as c:
        assert c.get("/studies").status_code == 200
        assert c.get("/studies", headers={"Host": "tune.example.com"}).status_code == 200
        assert c.get("/studies", headers={"Host": "localhost:8765"}).status_code == 200
        assert c.get("/studies", headers={"Host": "evil.example"}).status_code == 400
