"""JSON error answers of the team server: one shape for every 4xx/5xx, from roost's errors."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.errors import ConfigError, ConflictError, NotFoundError, RoostError

log = logging.getLogger(__name__)


def status_of(exc: RoostError) -> int:
    """The HTTP status of a roost error: its `status` attribute, else by kind (404, 409, 400)."""
    declared = getattr(exc, "status", None)
    if isinstance(declared, int):
        return declared
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, ConfigError):
        return 400
    return 400


def error(status: int, message: str, hint: str | None = None, code: str | None = None) -> JSONResponse:
    """`{"error": {"code", "message", "hint"}}` with `status`."""
    body: dict[str, object] = {"code": code or _code(status), "message": message}
    if hint:
        body["hint"] = hint
    return JSONResponse({"error": body}, status_code=status)


def _code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        413: "too_large",
        429: "rate_limited",
    }.get(status, "error" if status < 500 else "internal")


async def roost_error(request: Request, exc: Exception) -> Response:
    """Exception handler: a RoostError becomes its 4xx with message and hint."""
    assert isinstance(exc, RoostError)
    return error(status_of(exc), exc.message, exc.hint)


async def server_error(request: Request, exc: Exception) -> Response:
    """Exception handler: anything else is a 500 that tells nothing (the traceback goes to the server log)."""
    log.error("server error on %s %s", request.method, request.url.path, exc_info=exc)
    return error(500, "internal error (see the server log)")
