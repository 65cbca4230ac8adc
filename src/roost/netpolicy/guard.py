"""The request checks every roost server applies (docs/security.md): Host allow-list (400), same-origin state
changes (403), JSON content type on state changes (415) and the bearer token where one is configured (401) — as
plain functions for hand-written routers (`roost serve`) and as one composable ASGI middleware, `Guard`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from roost.netpolicy.auth import bearer, token_ok
from roost.netpolicy.hosts import host_allowed

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Mapping[bytes, bytes]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the content types a cross-site page may POST without a CORS preflight (the Fetch standard's "simple" types)
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
FORM = "application/x-www-form-urlencoded"
HOST_REFUSED = "invalid Host header; this server answers only its own host names"
HOST_HINT = "open it as http://127.0.0.1:PORT/, or start it with --allow-host NAME for another name"


def _origin_of(url: str) -> str | None:
    """'host[:port]' of an Origin/Referer URL, or None when it names no host ('null', garbage)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


def cross_site_reason(headers: Headers) -> str | None:
    """Why a state-changing request looks cross-site (Origin, Sec-Fetch-Site or Referer against Host), or None.

    `headers` maps lower-case header names to values (bytes, as in an ASGI scope). Browsers send Origin on every
    cross-origin POST; command-line clients send none of these headers and pass."""
    origin = headers.get(b"origin")
    site = headers.get(b"sec-fetch-site")
    referer = headers.get(b"referer")
    if origin is None and site is None and referer is None:  # the usual script or CLI client: three lookups
        return None
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    if origin is not None:
        text = origin.decode("latin-1")
        if _origin_of(text) != host:
            return f"Origin {text[:100]!r} is not this server"  # 'null' (sandboxed frames, file://) included
        return None
    if site is not None and site not in (b"same-origin", b"none"):
        return f"Sec-Fetch-Site is {site.decode('latin-1')[:30]!r}"
    if referer and _origin_of(referer.decode("latin-1")) != host:
        return "the Referer is another site"
    return None


def media_type(headers: Headers) -> str:
    """The Content-Type's media type, lower-case, without parameters ('' when absent)."""
    return headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()


def _has_body(headers: Headers) -> bool:
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() not in (b"", b"0"))


def content_type_reason(headers: Headers, takes_json: bool = True, forms: bool = False) -> str | None:
    """Why a state-changing request's content type is refused (415), or None.

    A type a cross-site page can send without a CORS preflight (text/plain, form, multipart) is refused (forms
    pass where `forms`: pages that carry a CSRF token); an endpoint that `takes_json` also refuses a body of any
    other type, or of none. A request with no body and no type passes (`curl -X POST`)."""
    kind = media_type(headers)
    if kind == "application/json" or kind.endswith("+json"):
        return None
    if forms and kind == FORM:
        return None
    if kind in SIMPLE_TYPES:
        return f"Content-Type {kind!r} is refused on state-changing requests"
    if takes_json and (kind or _has_body(headers)):
        return f"Content-Type {kind or '(none)'!r}: this endpoint takes application/json"
    return None


def check(
    scope: Scope,
    headers: Headers,
    allowed_hosts: Sequence[str] | None,
    expected: bytes | None = None,
    takes_json: bool = True,
    forms: bool = False,
    any_type: bool = False,
) -> tuple[int, str, str] | None:
    """The first refusal (status, message, hint) for a request under the policy, or None when it may proceed:
    Host (400), cross-site state change (403), missing token (401; `expected` is b'Bearer T'), content type
    (415, unless `any_type`). `roost serve`'s router calls these checks inline; Starlette servers use `Guard`."""
    if allowed_hosts is not None and not host_allowed(headers.get(b"host"), allowed_hosts):
        return 400, HOST_REFUSED, HOST_HINT
    unsafe = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
    if unsafe:
        why = cross_site_reason(headers)
        if why is not None:
            return 403, f"cross-site request refused: {why}", "send it from this server's own pages or a script"
    if expected is not None and not token_ok(headers.get(b"authorization"), expected):
        return 401, "missing or wrong bearer token", "send Authorization: Bearer TOKEN"
    if unsafe and not any_type and scope["type"] == "http":
        why = content_type_reason(headers, takes_json, forms)
        if why is not None:
            return 415, why, "send the body as JSON with Content-Type: application/json"
    return None


async def refuse(send: Send, status: int, message: str, hint: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send a JSON error reply {"error", "hint"} (a 401 also names the Bearer scheme)."""
    import json

    body = json.dumps({"error": message, "hint": hint}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware applying `check` to every HTTP and WebSocket request.

    allowed_hosts: the Host allow-list (see hosts.allowed_hosts; None: no Host check, for an app embedded behind
    a server that checks). token: the bearer token, when configured. open_paths: exact paths that need no token
    (health checks). forms: path prefixes whose state changes may be form posts (they check a CSRF token
    themselves). any_body: path prefixes whose state changes may carry any content type (a proxied app's own
    requests), still same-origin only."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: Sequence[str] | None,
        token: str | None = None,
        open_paths: Collection[str] = (),
        forms: tuple[str, ...] = (),
        any_body: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.allowed_hosts = list(allowed_hosts) if allowed_hosts is not None else None
        self.expected = bearer(token) if token else None
        self.open_paths = frozenset(open_paths)
        self.forms, self.any_body = forms, any_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope.get("headers") or [])
        refusal = check(
            scope,
            headers,
            self.allowed_hosts,
            None if path in self.open_paths else self.expected,
            forms=bool(self.forms) and path.startswith(self.forms),
            any_type=bool(self.any_body) and path.startswith(self.any_body),
        )
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await refuse(send, *refusal)
