"""Authentication of the team server: every request's credentials become an Identity at scope[identity.SCOPE_KEY].

Accepted: `Authorization: Bearer roost_<id>_<secret>` (roost clients, and the MLflow client's
MLFLOW_TRACKING_TOKEN), HTTP Basic name:password (MLFLOW_TRACKING_USERNAME/PASSWORD; failures count against the
same per-minute limit as the login form) and the UI's signed session cookie (set by /login). Public: /login,
/static/…, /api/v1/health, /metrics. Without credentials an API path answers 401 JSON, a page GET redirects to
/login, anything else answers 401. Credentials that are presented but wrong are never ignored: 401.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from roost.netpolicy.auth import ASGIApp, Receive, Scope, Send
from roost.server import login
from roost.server.audit import AUDIT_KEY, client_address
from roost.server.identity import SCOPE_KEY, Identity
from roost.server.limiter import login_limiter
from roost.server.settings import ServerSettings

PUBLIC_PATHS = frozenset({"/login", "/login/oidc", "/login/oidc/callback", "/api/v1/health", "/metrics"})
PUBLIC_PREFIXES = ("/static/",)
API_PREFIX = "/api/"
SERVER_PREFIXES = ("/api/v1/", "/api/2.0/", "/ajax-api/", "/login/", "/admin/", "/metrics", "/static/")
API_PREFIXES = (API_PREFIX, "/ajax-api/")  # MLflow's UI calls /ajax-api/…: JSON answers, never the login page
_VERSIONED_API = re.compile(r"/(?:ajax-)?api/v?\d")
UI_HINT = "use the REST API (roost runs list, roost models …), or ask an admin for the read role"
PAGE_METHODS = frozenset({"GET", "HEAD"})
BAD_TOKEN = "invalid, expired or revoked token, or a disabled account"
TOKEN_HINT = "create a token: roost tokens create --user NAME (an admin runs it on the server host)"


def is_public(path: str) -> bool:
    """Whether `path` is served without credentials."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def is_ui(path: str) -> bool:
    """Whether `path` belongs to the hosted web UI (pages, its JSON under /api/… other than the server's own APIs,
    TensorBoards), not to the server's REST/MLflow APIs, sign-in or admin pages."""
    if path.startswith(SERVER_PREFIXES) or path in ("/login", "/logout"):
        return False
    return _VERSIONED_API.match(path) is None  # /api/3.0/… and other versioned APIs are the server's: 404, not UI


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return str(v.decode("latin-1"))
    return None


def _basic(value: str) -> tuple[str, str] | None:
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = text.partition(":")
    return (name, password) if sep else None


class AuthMiddleware:
    """Resolve the request's credentials to an Identity (scope[identity.SCOPE_KEY]), or refuse the request."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings
        self.limiter = login_limiter(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        found = await self._identity(scope)
        if isinstance(found, Identity) and is_ui(path) and not await self._sees_everything(found):
            found = (
                403,
                f"{found.name} may not read every experiment and model, and the web UI shows them all",
                UI_HINT,
            )
        if isinstance(found, Identity):
            scope[SCOPE_KEY] = found
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, message, hint = found
        if status == 0:  # no credentials at all
            if scope["method"] in PAGE_METHODS and not path.startswith(API_PREFIXES):
                query = scope.get("query_string", b"").decode("latin-1")
                target = quote(path + ("?" + query if query else ""), safe="")
                await _send(send, 303, b"", [(b"location", f"/login?next={target}".encode("latin-1"))])
                return
            status, message, hint = 401, "not signed in", "send Authorization: Bearer TOKEN, or sign in at /login"
        from roost.server.responses import error

        resp = error(status, message, hint)
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer, Basic realm="roost"'))
        if status == 429:
            headers.append((b"retry-after", b"60"))
        await _send(send, status, bytes(resp.body), headers)

    async def _sees_everything(self, who: Identity) -> bool:
        """Whether `who` may use the hosted UI, which reads every experiment and model unfiltered."""
        from starlette.concurrency import run_in_threadpool

        from roost.server import permissions

        store, default = self.settings.store(), self.settings.default_role
        return await run_in_threadpool(permissions.sees_everything, store, who, default)

    async def _identity(self, scope: Scope) -> Identity | tuple[int, str, str]:
        """The Identity of the request, or (status, message, hint) of its refusal (status 0: no credentials)."""
        from roost.registry import accounts

        store = self.settings.store()
        auth = _header(scope, b"authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer":
                parts = accounts.split_token(value.strip())
                if parts is not None:  # the public id helps whoever reads the audit log; the secret never goes in
                    scope.setdefault(AUDIT_KEY, {}).setdefault("detail", {})["token"] = parts[0]
                found = await run_in_threadpool(accounts.token_account, store, value.strip())
                if found is None:
                    return 401, BAD_TOKEN, TOKEN_HINT
                holder, groups = found  # the account and its groups in one query: one round trip a request
                return Identity(holder.name, holder.id, holder.kind, holder.admin, groups, "token")
            if scheme.lower() == "basic":
                return await self._basic(scope, value)
            return 401, f"unsupported Authorization scheme {scheme[:20]!r}", "use Bearer TOKEN or Basic"
        session = login.cookies(scope).get(login.SESSION_COOKIE)
        if session:
            account_id = login.session_account(self.settings, session)
            acct = None if account_id is None else await run_in_threadpool(accounts.account_by_id, store, account_id)
            if acct is not None and not acct.disabled:
                return await self._make(acct, "session")
        return 0, "", ""

    async def _basic(self, scope: Scope, value: str) -> Identity | tuple[int, str, str]:
        from roost.registry import accounts

        creds = _basic(value)
        if creds is None:
            return 401, "malformed Basic credentials", "send base64(name:password)"
        name, password = creds
        scope.setdefault(AUDIT_KEY, {}).setdefault("detail", {})["account"] = name[:128]
        keys = [f"account:{name}", f"client:{client_address(scope, self.settings.trusted_proxies)}"]
        if self.limiter.blocked(keys):
            return 429, "too many failed sign-ins; wait a minute", "check MLFLOW_TRACKING_USERNAME/PASSWORD"
        acct = await run_in_threadpool(accounts.verify_password, self.settings.store(), name, password)
        if acct is None:
            self.limiter.failed(keys)
            return 401, "wrong name or password", "check MLFLOW_TRACKING_USERNAME/PASSWORD, or use a token"
        return await self._make(acct, "basic")

    async def _make(self, acct: Any, via: str) -> Identity:
        from roost.registry.grants import group_ids_of

        groups = await run_in_threadpool(group_ids_of, self.settings.store(), acct.id)
        return Identity(acct.name, acct.id, acct.kind, acct.admin, groups, via)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """/login, /logout, the OIDC sign-in (when configured) and the admins' audit log page /admin/audit."""
    from roost.server import audit_page, oidc

    return [*login.routes(settings), *oidc.routes(settings), *audit_page.routes(settings)]
