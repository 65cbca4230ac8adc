"""OIDC sign-in for the UI against a provider this test starts itself (a small authorization-code + PKCE provider
on 127.0.0.1, ID tokens signed RS256 with a key of its own): success, the same person twice, forged or wrong
tokens refused, no takeover of password accounts."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

CLIENT_ID, CLIENT_SECRET = "roost-ui", "provider-secret-1"


class Provider:
    """What the provider does next: who signs in and how it misbehaves."""

    def __init__(self, issuer: str) -> None:
        from authlib.jose import JsonWebKey

        self.issuer = issuer
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
        self.other_key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
        self.user = {"sub": "u-1", "preferred_username": "dana"}
        self.tamper: str | None = None  # 'nonce' | 'aud' | 'iss' | 'key' | 'expired'
        self.codes: dict[str, dict[str, Any]] = {}

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, RedirectResponse, Response
        from starlette.routing import Route

        async def discovery(request: Request) -> Response:
            return JSONResponse({
                "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            })  # fmt: skip

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(is_private=False)]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            assert q["client_id"] == CLIENT_ID and q["response_type"] == "code" and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": q["nonce"], "challenge": q["code_challenge"], "redirect": q["redirect_uri"]}
            return RedirectResponse(f"{q['redirect_uri']}?code={code}&state={q['state']}", status_code=302)

        async def token(request: Request) -> Response:
            from urllib.parse import parse_qsl

            from authlib.jose import jwt

            form = dict(parse_qsl((await request.body()).decode()))
            auth = base64.b64decode(request.headers["authorization"].split()[1]).decode()
            grant = self.codes.pop(str(form["code"]), None)
            verifier = str(form.get("code_verifier", ""))
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if auth != f"{CLIENT_ID}:{CLIENT_SECRET}" or grant is None or challenge != grant["challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                      **self.user}  # fmt: skip
            if self.tamper == "nonce":
                claims["nonce"] = "another"
            if self.tamper == "aud":
                claims["aud"] = "someone-else"
            if self.tamper == "iss":
                claims["iss"] = "http://evil.example"
            if self.tamper == "expired":
                claims["exp"] = now - 3600
            key = self.other_key if self.tamper == "key" else self.key
            id_token = jwt.encode({"alg": "RS256", "kid": key.as_dict()["kid"]}, claims, key).decode()
            return JSONResponse({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})

        return Starlette(routes=[
            Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks),
            Route("/authorize", authorize), Route("/token", token, methods=["POST"]),
        ])  # fmt: skip


@pytest.fixture(scope="module")
def provider() -> Any:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prov = Provider(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(prov.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "provider did not start"
        time.sleep(0.05)
    yield prov
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def sso(ws: Any, tmp_path: Any, provider: Provider, whoami: Any) -> Any:
    from starlette.testclient import TestClient

    from roost.server import oidc
    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    oidc._cache.clear()
    provider.tamper, provider.user = None, {"sub": "u-1", "preferred_username": "dana"}
    settings = ServerSettings(
        store_url=ws.store_url, artifact_root=f"file://{tmp_path}/a", oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
    )  # fmt: skip
    app = create_server_app(settings)
    whoami(app)
    return settings, TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def sign_in(client: Any, next: str = "/api/v1/whoami") -> Any:
    """The browser's round trip: roost → provider (real HTTP) → roost's callback."""
    r = client.get(f"/login/oidc?next={next}")
    assert r.status_code == 303, r.text
    at_provider = httpx.get(r.headers["location"], follow_redirects=False, timeout=10)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/login/oidc/callback" and "code" in parse_qs(back.query)
    return client.get(f"{back.path}?{back.query}")


def test_sign_in_creates_and_reuses_the_account(sso: Any, provider: Provider) -> None:
    from roost.registry import accounts, audit_log

    settings, client = sso
    assert "/login/oidc" in client.get("/login").text  # the login page offers it
    r = sign_in(client)
    assert r.status_code == 303 and r.headers["location"] == "/api/v1/whoami", r.text
    assert client.get("/api/v1/whoami").json()["name"] == "dana"
    store = settings.store()
    dana = accounts.get_account(store, "dana")
    assert dana.kind == "user" and not dana.admin
    assert accounts.verify_password(store, "dana", "") is None  # no password: SSO only
    client.cookies.clear()
    assert sign_in(client).status_code == 303  # the same person again: the same account
    assert [a.name for a in accounts.list_accounts(store)] == ["dana"]
    rows = audit_log.query(store, action="login.oidc")
    assert [(e.actor, e.status) for e in rows] == [("dana", 303), ("dana", 303)]
    assert CLIENT_SECRET.encode() not in b"".join(str(e).encode() for e in rows)


def test_account_made_for_sso_is_claimed_once(sso: Any, provider: Provider) -> None:
    from roost.registry import accounts

    settings, client = sso
    accounts.create_user(settings.store(), "dana", None, admin=True)
    assert sign_in(client).status_code == 303
    assert client.get("/api/v1/whoami").json() == {"name": "dana", "admin": True, "via": "session", "groups": []}
    # another person of the provider with the same display name cannot take it over
    provider.user = {"sub": "u-2", "preferred_username": "dana"}
    client.cookies.clear()
    r = sign_in(client)
    assert r.status_code == 403 and "taken" in r.json()["error"]["message"]


def test_password_and_service_accounts_never_taken_over(sso: Any, provider: Provider) -> None:
    from roost.registry import accounts

    settings, client = sso
    accounts.create_user(settings.store(), "dana", "correct horse battery", admin=True)
    assert sign_in(client).status_code == 403
    accounts.create_service_account(settings.store(), "robot")
    provider.user = {"sub": "u-3", "preferred_username": "robot"}
    client.cookies.clear()
    assert sign_in(client).status_code == 403
    assert client.get("/api/v1/whoami").status_code == 401


@pytest.mark.parametrize("tamper", ["nonce", "aud", "iss", "key", "expired"])
def test_bad_id_tokens_refused(sso: Any, provider: Provider, tamper: str) -> None:
    settings, client = sso
    provider.tamper = tamper
    r = sign_in(client)
    assert r.status_code == 401 and "ID token refused" in r.json()["error"]["message"], r.text
    assert "roost_session" not in r.headers.get("set-cookie", "")
    from roost.registry import accounts

    assert accounts.list_accounts(settings.store()) == []


def test_state_and_flow_cookie_required(sso: Any, provider: Provider) -> None:
    _, client = sso
    r = client.get("/login/oidc")
    at_provider = httpx.get(r.headers["location"], follow_redirects=False, timeout=10)
    back = urlsplit(at_provider.headers["location"])
    q = parse_qs(back.query)
    forged = client.get(f"/login/oidc/callback?code={q['code'][0]}&state=forged")
    assert forged.status_code == 401 and "state" in forged.json()["error"]["message"]
    other_browser = type(client)(client.app, base_url="http://127.0.0.1", follow_redirects=False)
    r = other_browser.get(f"{back.path}?{back.query}")  # a login CSRF: the victim's browser has no flow cookie
    assert r.status_code == 401 and "no sign-in in progress" in r.json()["error"]["message"]
    assert client.get("/login/oidc/callback?error=access_denied").status_code == 401


def test_disabled_sso_account_refused(sso: Any, provider: Provider) -> None:
    from roost.registry import accounts

    settings, client = sso
    assert sign_in(client).status_code == 303
    accounts.set_disabled(settings.store(), "dana")
    client.cookies.clear()
    r = sign_in(client)
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]


def test_no_oidc_routes_without_configuration(client: Any) -> None:
    assert client.get("/login/oidc").status_code == 404
    assert "/login/oidc" not in client.get("/login").text
