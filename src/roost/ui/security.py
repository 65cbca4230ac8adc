"""ASGI middleware for the UI: optional bearer token (header, cookie or ?token= once), headers, same-origin POSTs."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "roost_ui_token"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; frame-src 'self'; base-uri 'none'; form-action 'self'"
)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _plain(send: Send, status: int, body: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class TokenAuth:
    """Require `token` on every request: `Authorization: Bearer T`, the cookie, or `?token=T` (which sets it)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token:
            await self.app(scope, receive, send)
            return
        h = _headers(scope)
        auth = h.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            await self.app(scope, receive, send)
            return
        cookie = SimpleCookie()
        try:
            cookie.load(h.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is simply not a token
            pass
        if COOKIE in cookie and self._ok(cookie[COOKIE].value):
            await self.app(scope, receive, send)
            return
        qs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in qs if k == "token"]
        if given and self._ok(given[-1]):
            rest = urlencode([(k, v) for k, v in qs if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + ("?" + rest if rest else "")
            await _plain(
                send,
                303,
                "authenticated",
                [
                    (b"location", location.encode("latin-1", "replace")),
                    (b"set-cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()),
                ],
            )
            return
        await _plain(
            send,
            401,
            "roost ui: a token is required (open the URL printed by `roost ui`, or send 'Authorization: Bearer TOKEN')",
            [(b"www-authenticate", b"Bearer")],
        )


class SameOriginPosts:
    """Refuse state-changing requests whose Origin header names another site (CSRF guard)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            h = _headers(scope)
            origin = h.get("origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != h.get("host", ""):
                await _plain(send, 403, "cross-origin request refused")
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Add CSP, nosniff, frame and referrer headers to UI responses, and a Server-Timing figure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/tb/"):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def wrapped(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                headers = list(msg.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"SAMEORIGIN"),
                    (b"referrer-policy", b"same-origin"),
                    (b"server-timing", f"app;dur={(time.perf_counter() - t0) * 1000:.2f}".encode()),
                ]
                msg = {**msg, "headers": headers}
            await send(msg)

        await self.app(scope, receive, wrapped)
