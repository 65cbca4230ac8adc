"""ASGI middleware for the UI: optional bearer token (header, cookie or ?token= once), headers, same-origin
state changes, the CSRF token of the UI's own forms, and the scrubbing of filesystem paths from error text."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_BODY = 1024 * 1024  # state-changing requests of the UI are small: run ids
_ABS_PATH = re.compile(
    r"(?:file://|(?<![\w.~/]))/(?!(?:tb|runs|api|static|models)/)(?:[^\s'\"<>:,;/]+/)+([^\s'\"<>:,;/]*)"
)

COOKIE = "roost_ui_token"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; frame-src 'self'; base-uri 'none'; form-action 'self'"
)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def new_csrf_token() -> str:
    """A fresh random CSRF token (one per UI process; the pages put it in their forms)."""
    return secrets.token_urlsafe(32)


def scrub_paths(text: str) -> str:
    """Text for a client: every absolute filesystem path cut to '…/' and its last part."""
    return _ABS_PATH.sub(lambda m: "…/" + m.group(1), text)


async def _plain(send: Send, status: int, body: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
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
        if not candidate or not self.token:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

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


def _origin_of(url: str) -> str | None:
    """'host[:port]' of an Origin/Referer URL, or None when it names no host ('null', garbage)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def cross_site_reason(scope: Scope) -> str | None:
    """Why a state-changing request looks cross-site (Origin, Sec-Fetch-Site or Referer), or None."""
    h = _headers(scope)
    host = h.get("host", "").lower()
    origin = h.get("origin")
    if origin is not None:
        if _origin_of(origin) != host:
            return f"Origin {origin[:100]!r} is not this UI"  # 'null' (sandboxed frames) included
        return None
    site = h.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site[:30]!r}"
    referer = h.get("referer")
    if referer and _origin_of(referer) != host:
        return "the Referer is another site"
    return None


class SameOriginPosts:
    """Refuse state-changing requests from another origin: Origin 'null' or another site, a cross-site
    Sec-Fetch-Site, or (without those headers) a Referer on another site. The CSRF guard's first half."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            why = cross_site_reason(scope)
            if why is not None:
                await _plain(send, 403, f"cross-origin request refused: {why}")
                return
        await self.app(scope, receive, send)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, or a RoostError (413) past `limit` bytes."""
    from roost.errors import RoostError

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RoostError(f"request body over {limit} bytes", hint="send run ids only")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RoostError(f"request body over {limit} bytes", hint="send run ids only")
        chunks.append(chunk)
    return b"".join(chunks)


def csrf_ok(request: Request, body: bytes, expected: str) -> bool:
    """True when a state-changing request proves it comes from the UI's own pages or from a script.

    A JSON body (a content type no cross-site form can send without a CORS preflight, which the UI never grants)
    or the page's token in the X-CSRF-Token header or the form's csrf_token field passes; anything else (a
    form-encoded, multipart or text/plain POST without the token) does not.
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        return True
    given = request.headers.get(CSRF_HEADER)
    if given is None and ctype == "application/x-www-form-urlencoded":
        fields = [v for k, v in parse_qsl(body.decode("latin-1")) if k == CSRF_FIELD]
        given = fields[-1] if fields else None
    if not given:
        return False
    return hmac.compare_digest(given.encode("latin-1", "replace"), expected.encode())


class SecurityHeaders:
    """Add CSP, nosniff, frame and referrer headers to UI responses, and a Server-Timing figure."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/tb/"):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def wrapped(msg: Message) -> None:
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
