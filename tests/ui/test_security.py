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
