"""The UI's own security pieces: response headers, the CSRF token of its forms, bounded bodies and the scrubbing of
filesystem paths from error text. Host, Origin, content type and token checks are roost.netpolicy's (shared by
every roost server)."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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


def new_csrf_token() -> str:
    """A fresh random CSRF token (one per UI process; the pages put it in their forms)."""
    return secrets.token_urlsafe(32)


def scrub_paths(text: str) -> str:
    """Text for a client: every absolute filesystem path cut to '…/' and its last part."""
    return _ABS_PATH.sub(lambda m: "…/" + m.group(1), text)


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
