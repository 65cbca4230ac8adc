"""The UI's sign-in: /login (a form with a CSRF token, rate-limited per account name and per client address),
/logout, and the signed session cookie they set."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.server.audit import AUDIT_KEY, client_address
from roost.server.limiter import login_limiter
from roost.server.settings import ServerSettings

if TYPE_CHECKING:
    from jinja2 import Environment, Template

SESSION_COOKIE = "roost_session"
CSRF_COOKIE = "roost_csrf"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600  # a UI session lasts 12 hours
MAX_FORM = 16 * 1024
_env: Environment | None = None


def session_secret(settings: ServerSettings) -> str:
    """The key that signs session cookies and CSRF tokens (a random one per process when none is configured)."""
    if not settings.session_secret:
        settings.session_secret = secrets.token_urlsafe(32)
    return settings.session_secret


def ui_csrf(settings: ServerSettings) -> str:
    """The CSRF token of the web UI's own forms when the server hosts it: derived from the session secret, so every
    worker (all sharing that secret) accepts the token a page from any of them carries."""
    return hmac.new(session_secret(settings).encode(), b"roost-ui-csrf", hashlib.sha256).hexdigest()


def _serializer(settings: ServerSettings) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(session_secret(settings), salt="roost-session")


def make_session(settings: ServerSettings, account_id: int) -> str:
    """A signed session cookie value for an account."""
    return str(_serializer(settings).dumps({"a": account_id}))


def session_account(settings: ServerSettings, value: str) -> int | None:
    """The account id a session cookie names, or None when it is forged, damaged or older than SESSION_MAX_AGE."""
    from itsdangerous import BadData

    try:
        data = _serializer(settings).loads(value, max_age=SESSION_MAX_AGE)
    except BadData:
        return None
    found = data.get("a") if isinstance(data, dict) else None
    return found if isinstance(found, int) else None


def cookies(scope: Mapping[str, Any]) -> dict[str, str]:
    """The request's cookies (a malformed header: none)."""
    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001 - a malformed cookie header carries no session
        return {}
    return {k: m.value for k, m in jar.items()}


def cookie_header(settings: ServerSettings, name: str, value: str, max_age: int | None) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure when the server is behind TLS."""
    parts = [f"{name}={value}", "HttpOnly", "SameSite=Lax", "Path=/"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if settings.secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def _csrf_for(settings: ServerSettings, nonce: str) -> str:
    key = session_secret(settings).encode()
    return hmac.new(key, b"csrf:" + nonce.encode("latin-1", "replace"), hashlib.sha256).hexdigest()


def csrf_ok(settings: ServerSettings, scope: Mapping[str, Any], given: str | None) -> bool:
    """Whether a form's token matches the browser's CSRF cookie (signed double submit; constant-time)."""
    nonce = cookies(scope).get(CSRF_COOKIE)
    if not nonce or not given:
        return False
    return hmac.compare_digest(_csrf_for(settings, nonce).encode(), given.encode("latin-1", "replace"))


def template(name: str) -> Template:
    """One of the server's own page templates (autoescaped)."""
    global _env
    if _env is None:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        here = Path(__file__).parent / "templates"
        _env = Environment(loader=FileSystemLoader(here), autoescape=select_autoescape(("html",)))
    return _env.get_template(name)


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in (never another site: no scheme, no //host, no backslash)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(
    settings: ServerSettings, request: Request, page: str, status: int = 200, message: str | None = None, **ctx: Any
) -> Response:
    nonce = cookies(request.scope).get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    oidc = bool(settings.oidc_issuer and settings.oidc_client_id)
    html = template(page).render(csrf_token=_csrf_for(settings, nonce), message=message, oidc=oidc, **ctx)
    resp = HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})
    resp.headers.append("set-cookie", cookie_header(settings, CSRF_COOKIE, nonce, None))
    return resp


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    return dict(parse_qsl(body.decode("utf-8", "replace")))


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """GET/POST /login and GET/POST /logout."""
    limiter = login_limiter(settings)

    async def login(request: Request) -> Response:
        nxt = safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return _page(settings, request, "login.html", next=nxt, name="")
        form = await _form(request)
        name, password = form.get("name", "")[:128], form.get("password", "")
        nxt = safe_next(form.get("next"))
        audit = request.scope.setdefault(AUDIT_KEY, {})
        audit.update(action="login", detail={"account": name})
        if not csrf_ok(settings, request.scope, form.get(CSRF_FIELD)):
            msg = "this form is stale or was not sent from this server's page: reload it and sign in again"
            return _page(settings, request, "login.html", 403, msg, next=nxt, name=name)
        keys = [f"account:{name}", f"client:{client_address(request.scope, settings.trusted_proxies)}"]
        if limiter.blocked(keys):
            msg = "too many failed sign-ins; wait a minute and try again"
            resp = _page(settings, request, "login.html", 429, msg, next=nxt, name=name)
            resp.headers["retry-after"] = "60"
            return resp
        from starlette.concurrency import run_in_threadpool

        from roost.registry.accounts import verify_password

        acct = await run_in_threadpool(verify_password, settings.store(), name, password)
        if acct is None:
            limiter.failed(keys)
            return _page(settings, request, "login.html", 401, "wrong name or password", next=nxt, name=name)
        audit["actor"] = acct.name
        resp = RedirectResponse(nxt, status_code=303)
        resp.headers.append(
            "set-cookie", cookie_header(settings, SESSION_COOKIE, make_session(settings, acct.id), SESSION_MAX_AGE)
        )
        resp.headers.append("set-cookie", cookie_header(settings, CSRF_COOKIE, secrets.token_urlsafe(24), None))
        return resp

    async def logout(request: Request) -> Response:
        if request.method == "GET":
            return _page(settings, request, "logout.html")
        request.scope.setdefault(AUDIT_KEY, {})["action"] = "logout"
        form = await _form(request)
        if not csrf_ok(settings, request.scope, form.get(CSRF_FIELD)):
            msg = "this form is stale or was not sent from this server's page: reload it and press the button again"
            return _page(settings, request, "logout.html", 403, msg)
        resp = RedirectResponse("/login", status_code=303)
        resp.headers.append("set-cookie", cookie_header(settings, SESSION_COOKIE, "", 0))
        return resp

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
    ]
