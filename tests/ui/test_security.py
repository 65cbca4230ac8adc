"""Security: artifact paths stay under the root, token auth, same-origin POSTs, host allow-list, headers."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from roost.ui import create_app

TOKEN = "s3cret-token-123"


@pytest.mark.parametrize(
    "path",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "a/../../x",
        "..",
        "file:///etc/passwd",
        "tensorboard/../../artifacts/../../roost.db",
    ],
)
def test_download_cannot_leave_artifact_root(client, populated, path):
    for route in ("download", "raw", "view"):
        r = client.get(f"/runs/{populated['a']}/artifacts/{route}", params={"path": path})
        assert r.status_code in (400, 404), (route, path)
        assert "root:x:0:0" not in r.text


def test_symlink_out_of_the_root_is_refused(client, populated, tmp_path):
    import roost

    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    art = roost.get_run(populated["a"])["artifact_uri"].removeprefix("file://")
    os.symlink(secret, os.path.join(art, "link.txt"))
    r = client.get(f"/runs/{populated['a']}/artifacts/download", params={"path": "link.txt"})
    assert r.status_code == 400 and "top secret" not in r.text
    assert "escapes the artifact root" in r.text


def test_token_required_everywhere(populated):
    with TestClient(create_app(token=TOKEN), follow_redirects=False) as c:
        for url in ("/runs", "/api/runs", "/static/style.css", f"/runs/{populated['a']}/artifacts/download?path=x"):
            assert c.get(url).status_code == 401, url
        assert c.get("/api/runs", headers={"Authorization": "Bearer wrong-token-xx"}).status_code == 401
        assert c.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/runs", params={"token": "wrong-token-xx"}).status_code == 401


def test_query_token_once_sets_cookie_and_drops_it_from_the_url(populated):
    with TestClient(create_app(token=TOKEN), follow_redirects=False) as c:
        r = c.get("/runs", params={"token": TOKEN, "q": "params.lr > 0"})
        assert r.status_code == 303
        assert r.headers["location"] == "/runs?q=params.lr+%3E+0"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get(r.headers["location"]).status_code == 200  # the client kept the cookie


def test_bad_token_value_is_rejected_at_start():
    from roost.errors import RoostError

    with pytest.raises(RoostError):
        create_app(token="short")
    with pytest.raises(RoostError):
        create_app(token="has;semicolon-inside")


def test_cross_origin_post_is_refused(client, populated):
    r = client.post(
        "/api/tensorboard",
        json={"runs": [populated["a"]]},
        headers={"Origin": "http://evil.example", "Host": "testserver"},
    )
    assert r.status_code == 403


def test_loopback_host_allow_list(populated):
    from roost.ui.app import LOOPBACK_HOSTS

    with TestClient(create_app(allowed_hosts=LOOPBACK_HOSTS), base_url="http://127.0.0.1:5000") as c:
        assert c.get("/runs").status_code == 200
        assert c.get("/runs", headers={"Host": "attacker.example"}).status_code == 400  # DNS rebinding


def test_pages_carry_csp_and_nosniff(client):
    r = client.get("/runs")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["server-timing"].startswith("app;dur=")


@pytest.fixture
def fake_client(populated, fake_tb_command):
    app = create_app(tb_command=fake_tb_command)
    with TestClient(app, follow_redirects=False) as c:
        yield c, app


def test_null_origin_post_is_refused(fake_client, populated):
    """A sandboxed iframe sends `Origin: null`: such a cross-site POST must not start a TensorBoard."""
    c, app = fake_client
    for url, kw in (
        ("/api/tensorboard", {"json": {"runs": [populated["a"]]}}),
        ("/tensorboard", {"data": {"runs": populated["a"]}}),
    ):
        r = c.post(url, headers={"Origin": "null"}, **kw)
        assert r.status_code == 403, (url, r.status_code, r.text[:200])
    r = c.delete("/api/tensorboard/000000000000", headers={"Origin": "null"})
    assert r.status_code == 403
    assert app.state.ui.tb.boards == {}


def test_other_site_origin_and_fetch_metadata_are_refused(fake_client, populated):
    c, app = fake_client
    for headers in (
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver:81"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Referer": "http://evil.example/page"},
    ):
        r = c.post("/api/tensorboard", json={"runs": [populated["a"]]}, headers=headers)
        assert r.status_code == 403, headers
    assert app.state.ui.tb.boards == {}


def test_form_post_needs_the_csrf_token(fake_client, populated, csrf_from):
    """A simple (form-encoded) POST without the page's token is refused, even with no Origin header at all."""
    c, app = fake_client
    a = populated["a"]
    assert c.post("/tensorboard", data={"runs": a}).status_code == 403
    assert c.post("/tensorboard", data={"runs": a, "csrf_token": "forged-token-123"}).status_code == 403
    assert c.post("/api/tensorboard", data={"runs": a}).status_code == 403  # form-encoded to the API too
    text = {"content-type": "text/plain"}  # a type any page may POST cross-site: refused by the shared policy
    assert c.post(f"/api/tensorboard?runs={a}", content=b"", headers=text).status_code == 415
    assert app.state.ui.tb.boards == {}
    token = csrf_from(c.get(f"/runs/{a}").text)
    r = c.post("/tensorboard", data={"runs": a, "csrf_token": token}, headers={"Origin": "http://testserver"})
    assert r.status_code == 303 and r.headers["location"].startswith("/tb/")
    assert c.post("/api/tensorboard", data={"runs": a}, headers={"X-CSRF-Token": token}).status_code == 200


def test_compare_page_form_carries_the_token(fake_client, populated, csrf_from):
    c, _ = fake_client
    html = c.get("/compare", params={"runs": f"{populated['a']},{populated['b']}"}).text
    token = csrf_from(html)
    r = c.post("/tensorboard", data={"runs": [populated["a"], populated["b"]], "csrf_token": token})
    assert r.status_code == 303


def test_json_api_needs_no_token_from_same_origin_or_scripts(fake_client, populated):
    """application/json cannot be sent cross-site without a CORS preflight (which the UI never grants)."""
    c, _ = fake_client
    r = c.post("/api/tensorboard", json={"runs": [populated["a"]]}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    key = r.json()["key"]
    assert c.post("/api/tensorboard", json={"runs": [populated["a"]]}).status_code == 200  # curl-like: no Origin
    assert c.delete(f"/api/tensorboard/{key}").status_code == 200
