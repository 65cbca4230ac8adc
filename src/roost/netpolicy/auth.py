"""Bearer tokens: constant-time comparison, and a browser-friendly token gate (header, cookie or ?token= once)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def bearer(token: str) -> bytes:
    """The Authorization header value that carries `token`."""
    return f"Bearer {token}".encode()


def token_ok(header: bytes | None, expected: bytes | None) -> bool:
    """Whether the Authorization header carries the expected 'Bearer TOKEN' (constant-time compare; no token
    configured: always)."""
    return expected is None or (header is not None and hmac.compare_digest(header, expected))


def new_token() -> str:
    """A fresh random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


async def _plain(send: Send, status: int, body: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = body.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
    await send({"type": "http.response.body", "body": data})


class TokenAuth:
    """Require `token` on every HTTP request: `Authorization: Bearer T`, the cookie `cookie`, or `?token=T` (which
    answers 303 to the same URL without it and sets the HttpOnly, SameSite=Strict cookie) — for servers people
    open in a browser (the UI). Scripts use the header."""

    def __init__(self, app: ASGIApp, token: str | None, cookie: str = "roost_token", who: str = "roost") -> None:
        self.app, self.token, self.cookie, self.who = app, token, cookie, who

    def _ok(self, candidate: str | None) -> bool:
        if not candidate or not self.token:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token:
            await self.app(scope, receive, send)
            return
        h = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        auth = h.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            await self.app(scope, receive, send)
            return
        jar = SimpleCookie()
        try:
            jar.load(h.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is simply not a token
            pass
        if self.cookie in jar and self._ok(jar[self.cookie].value):
            await self.app(scope, receive, send)
            return
        qs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in qs if k == "token"]
        if given and self._ok(given[-1]):
            rest = urlencode([(k, v) for k, v in qs if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + ("?" + rest if rest else "")
            cookie = f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            extra = [(b"location", location.encode("latin-1", "replace")), (b"set-cookie", cookie.encode())]
            await _plain(send, 303, "authenticated", extra)
            return
        await _plain(
            send,
            401,
            f"{self.who}: a token is required (open the URL printed at start, or send 'Authorization: Bearer TOKEN')",
            [(b"www-authenticate", b"Bearer")],
        )
