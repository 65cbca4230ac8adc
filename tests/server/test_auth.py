"""Authentication of the team server through the real app: tokens, HTTP Basic, the login form (CSRF, rate limit,
cross-site refusal), sessions and logout."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pytest

PASSWORD = "correct horse battery"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def basic(name: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def alice(server: Any) -> Any:
    from roost.registry import accounts

    return accounts.create_user(server[2], "alice", PASSWORD)


def login(client: Any, name: str, password: str, **extra: str) -> Any:
    page = client.get("/login")
    assert page.status_code == 200
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(page.text), **extra})


def test_no_credentials(client: Any) -> None:
    r = client.get("/api/v1/whoami")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert "Bearer" in r.headers["www-authenticate"]
    r = client.get("/experiments?x=1")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fexperiments%3Fx%3D1"
    assert client.post("/runs/x/delete", json={}).status_code == 401
    for public in ("/login", "/static/style.css", "/metrics"):
        assert client.get(public).status_code == 200, public


def test_bearer_tokens(server: Any, client: Any, alice: Any) -> None:
    from roost.registry import accounts

    store = server[2]
    new = accounts.create_token(store, "alice", expires_in=timedelta(days=1))
    r = client.get("/api/v1/whoami", headers=bearer(new.token))
    assert r.status_code == 200 and r.json() == {"name": "alice", "admin": False, "via": "token", "groups": []}
    for bad in (new.token + "x", "roost_0000000000000000_x", "garbage", ""):
        assert client.get("/api/v1/whoami", headers=bearer(bad)).status_code == 401, bad
    assert client.get("/api/v1/whoami", headers={"authorization": "Digest x"}).status_code == 401
    accounts.revoke_token(store, new.record.id)
    assert client.get("/api/v1/whoami", headers=bearer(new.token)).status_code == 401
    other = accounts.create_token(store, "alice")
    accounts.set_disabled(store, "alice")
    assert client.get("/api/v1/whoami", headers=bearer(other.token)).status_code == 401
    # a wrong token on a page is a 401, never a silent redirect that hides the error
    assert client.get("/experiments", headers=bearer("roost_0000000000000000_x")).status_code == 401


def test_group_ids_in_identity(server: Any, client: Any, alice: Any) -> None:
    from roost.registry import accounts, grants

    g = grants.create_group(server[2], "ml")
    grants.add_member(server[2], "ml", "alice")
    tok = accounts.create_token(server[2], "alice").token
    assert client.get("/api/v1/whoami", headers=bearer(tok)).json()["groups"] == [g.id]


def test_http_basic_for_the_mlflow_client(client: Any, alice: Any) -> None:
    r = client.get("/api/v1/whoami", headers=basic("alice", PASSWORD))
    assert r.status_code == 200 and r.json()["via"] == "basic"
    assert client.get("/api/v1/whoami", headers=basic("alice", "nope")).status_code == 401
    assert client.get("/api/v1/whoami", headers={"authorization": "Basic !!!"}).status_code == 401


def test_basic_brute_force_limited(client: Any, alice: Any) -> None:
    codes = [client.get("/api/v1/whoami", headers=basic("alice", f"guess{i}")).status_code for i in range(15)]
    assert codes == [401] * 10 + [429] * 5
    # the right password is refused too while the name is blocked (that is what a limit per name means)
    assert client.get("/api/v1/whoami", headers=basic("alice", PASSWORD)).status_code == 429


def test_login_session_logout(server: Any, client: Any, alice: Any) -> None:
    from roost.registry import accounts

    r = login(client, "alice", PASSWORD, next="/api/v1/whoami")
    assert r.status_code == 303 and r.headers["location"] == "/api/v1/whoami"
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("roost_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session
    who = client.get("/api/v1/whoami")
    assert who.status_code == 200 and who.json()["via"] == "session"
    # logout needs its CSRF token
    assert client.post("/logout", data={}).status_code == 403
    page = client.get("/logout")
    r = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/v1/whoami").status_code == 401
    # a disabled account's session stops working at once
    login(client, "alice", PASSWORD)
    assert client.get("/api/v1/whoami").status_code == 200
    accounts.set_disabled(server[2], "alice")
    assert client.get("/api/v1/whoami").status_code == 401
    assert client.get("/experiments").status_code == 303


def test_forged_session_cookie_refused(client: Any, alice: Any) -> None:
    import base64 as b64

    client.cookies.set("roost_session", b64.urlsafe_b64encode(b'{"a":1}').decode() + ".AAAAAA.forged")
    assert client.get("/api/v1/whoami").status_code == 401


def test_secure_cookies_when_configured(server: Any, alice: Any) -> None:
    from starlette.testclient import TestClient

    settings, app, _ = server
    settings.secure_cookies = True
    c = TestClient(app, base_url="https://127.0.0.1", follow_redirects=False)
    r = login(c, "alice", PASSWORD)
    assert r.status_code == 303
    assert all("Secure" in v for v in r.headers.get_list("set-cookie"))


def test_open_redirect_refused(client: Any, alice: Any) -> None:
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.clear()
        r = login(client, "alice", PASSWORD, next=evil)
        assert r.status_code == 303 and r.headers["location"] == "/", evil


def test_csrf_missing_or_wrong_is_403(client: Any, alice: Any) -> None:
    client.get("/login")
    r = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert r.status_code == 403 and "roost_session" not in r.headers.get("set-cookie", "")
    r = client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": "0" * 64})
    assert r.status_code == 403
    # a token from another browser (its own cookie) does not fit this browser's cookie
    from starlette.testclient import TestClient

    other = TestClient(client.app, base_url="http://127.0.0.1")
    token = csrf_of(other.get("/login").text)
    assert client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token}).status_code == 403


def test_cross_site_login_post_refused(server: Any, client: Any, alice: Any) -> None:
    from roost.registry import audit_log

    token = csrf_of(client.get("/login").text)
    form = {"name": "alice", "password": PASSWORD, "csrf_token": token}
    r = client.post("/login", data=form, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.text
    r = client.post("/login", data=form, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    rows = audit_log.query(server[2], status_min=400)
    assert [(e.resource, e.status) for e in rows] == [("/login", 403), ("/login", 403)]


def test_thousand_wrong_passwords(server: Any, alice: Any) -> None:
    """1,000 wrong passwords from one address: 401 until the limit, 429 after; each attempt in the audit log.
    The limit holds per name (other addresses, via a trusted proxy) and per address (other names)."""
    from starlette.testclient import TestClient

    from roost.registry import audit_log

    settings, app, store = server
    settings.trusted_proxies = ["10.0.0.1"]
    c = TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.5", 1), follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    codes = [
        c.post("/login", data={"name": "alice", "password": f"guess-{i}", "csrf_token": token}).status_code
        for i in range(1000)
    ]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
    assert c.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token}).status_code == 429
    assert c.post("/login", data={"name": "carol", "password": "x" * 9, "csrf_token": token}).status_code == 429
    rows = audit_log.query(store, action="login", limit=5000)
    assert len(rows) == 1002 and {e.client for e in rows} == {"127.0.0.5"}
    assert sorted({e.status for e in rows}) == [401, 429]
    assert all(e.detail and e.detail.get("account") in ("alice", "carol") for e in rows)
    # the same name from elsewhere (a trusted proxy forwarding another client) is blocked as well
    p = TestClient(app, base_url="http://127.0.0.1", client=("10.0.0.1", 2), follow_redirects=False)
    token = csrf_of(p.get("/login").text)
    r = p.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token},
               headers={"x-forwarded-for": "192.0.2.7"})  # fmt: skip
    assert r.status_code == 429
    assert audit_log.query(store, action="login", limit=1)[0].client == "192.0.2.7"
    # and a different name from a fresh address signs in
    bob_ok = p.post("/login", data={"name": "nobody", "password": "whatever1", "csrf_token": token},
                    headers={"x-forwarded-for": "192.0.2.8"})  # fmt: skip
    assert bob_ok.status_code == 401
