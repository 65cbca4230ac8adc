"""The HTTP reply of a serving request, shared by the router (ServeApp._http) and the direct infer route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from roost.serve.codec import HTTPError
from roost.serve.reqid import HEADER, new_id
from roost.serve.security import redact

log = logging.getLogger("roost.serve.app")

JSON = b"application/json"
Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, bytes, bytes, Headers]


def failed(scope: dict[str, Any], exc: Exception) -> Reply:
    """The reply to a request that raised `exc`: its status and message for an HTTPError, else a 500 (logged)."""
    if isinstance(exc, HTTPError):
        return exc.status, orjson.dumps({"error": redact(exc.message)}), JSON, exc.headers
    log.error("internal error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    return 500, orjson.dumps({"error": f"internal error ({type(exc).__name__})"}), JSON, []


async def answer(
    send: Callable[[dict[str, Any]], Awaitable[None]],
    status: int,
    body: bytes,
    ctype: bytes,
    request_id: str,
    extra: Headers,
) -> None:
    """Send a reply: Content-Type, Content-Length, X-Request-Id (a new one when none was read) and `extra`."""
    rid = (request_id or new_id()).encode()
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), (HEADER, rid), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
