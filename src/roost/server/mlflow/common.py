"""What every MLflow endpoint shares: MLflow's error shape and codes, request fields, the caller and its
permissions, millisecond times and page tokens."""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from roost.errors import ConflictError, NotFoundError, RoostError
from roost.registry.store import Store
from roost.server import permissions
from roost.server.identity import SCOPE_KEY, Forbidden, Identity, Unauthenticated
from roost.server.settings import ServerSettings

log = logging.getLogger(__name__)

# MLflow's error codes and the HTTP status its server answers them with
STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "NOT_IMPLEMENTED": 501,
    "INTERNAL_ERROR": 500,
}


class MlflowError(Exception):
    """An answer in MLflow's error shape: {"error_code", "message"} with the code's HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or STATUS.get(code, 400)


def bad(message: str) -> MlflowError:
    """INVALID_PARAMETER_VALUE (400)."""
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def missing(message: str) -> MlflowError:
    """RESOURCE_DOES_NOT_EXIST (404)."""
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def error_response(code: str, message: str, status: int | None = None) -> JSONResponse:
    """MLflow's error body."""
    return JSONResponse({"error_code": code, "message": message}, status_code=status or STATUS.get(code, 400))


def from_roost(exc: RoostError) -> MlflowError:
    """The MLflow error of a roost error (its message and hint; the HTTP status MLflow gives the code)."""
    text = exc.message + (f" ({exc.hint})" if exc.hint else "")
    if isinstance(exc, Unauthenticated):
        return MlflowError("UNAUTHENTICATED", text)
    if isinstance(exc, Forbidden):
        return MlflowError("PERMISSION_DENIED", text)
    if isinstance(exc, NotFoundError):
        return MlflowError("RESOURCE_DOES_NOT_EXIST", text)
    if isinstance(exc, ConflictError):
        return MlflowError("RESOURCE_ALREADY_EXISTS", text)
    declared = getattr(exc, "status", None)
    return MlflowError("INVALID_PARAMETER_VALUE", text, declared if isinstance(declared, int) else None)


@dataclass
class Ctx:
    """One request: the settings, the store and who is asking (None: a server built without the auth middleware)."""

    request: Request
    settings: ServerSettings
    store: Store
    identity: Identity | None

    @property
    def user(self) -> str | None:
        """The caller's account name."""
        return self.identity.name if self.identity is not None else None

    def need(self, kind: str, name: str, role: str) -> None:
        """Forbidden (PERMISSION_DENIED) unless the caller has `role` on experiment/model `name`."""
        permissions.require(self.store, self._who(), kind, name, role, self.settings.default_role)

    def may(self, kind: str, name: str, role: str = "read") -> bool:
        """Whether the caller has `role` on experiment/model `name` (for filtering search results)."""
        from roost.server.identity import rank

        return rank(permissions.role_on(self.store, self._who(), kind, name, self.settings.default_role)) >= rank(role)

    def created(self, kind: str, name: str) -> None:
        """Record the caller as the creator (manager) of a new experiment or registered model."""
        permissions.on_create(self.store, self._who(), kind, name)

    def _who(self) -> Identity:
        """The caller; no identity (a server built without the auth middleware) fails closed: 401."""
        if self.identity is None:
            raise Unauthenticated(
                "not signed in", hint="set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
            )
        return self.identity


def make_ctx(request: Request, settings: ServerSettings, store: Store) -> Ctx:
    """The Ctx of a request (its identity as the auth middleware left it in the scope)."""
    found = request.scope.get(SCOPE_KEY)
    return Ctx(request, settings, store, found if isinstance(found, Identity) else None)


def answer_error(request: Request, exc: MlflowError | RoostError) -> Response:
    """An error raised by an endpoint as MLflow's error answer."""
    err = exc if isinstance(exc, MlflowError) else from_roost(exc)
    return error_response(err.code, err.message, err.status)


Handler = Callable[[Ctx, dict[str, Any]], dict[str, Any]]


async def request_fields(request: Request, settings: ServerSettings) -> dict[str, Any]:
    """The request's fields: query parameters (repeated ones as lists), then the JSON body's."""
    fields: dict[str, Any] = dict(request.path_params)
    for key in request.query_params:
        values = request.query_params.getlist(key)
        fields[key] = values[0] if len(values) == 1 else values
    if request.method != "GET":
        raw = await _bounded_body(request, settings.max_body_bytes)
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise bad(f"the request body is not JSON: {exc}") from None
            if not isinstance(body, dict):
                raise bad("the request body must be a JSON object")
            fields.update(body)
    fields.update(request.path_params)  # the path names the object (logged-models/{model_id}), not the body
    return fields


async def _bounded_body(request: Request, limit: int) -> bytes:
    """The request body, read no further than `limit` bytes (a longer one is refused, not held in memory)."""
    parts, size = [], 0
    async for block in request.stream():
        size += len(block)
        if size > limit:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"request body over the limit of {limit:,} bytes; send fewer metrics per log-batch",
                413,
            )
        parts.append(block)
    return b"".join(parts)


def endpoint(settings: ServerSettings, store: Store, fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running handler `fn(ctx, fields)` in a thread; errors in MLflow's shape."""

    async def run(request: Request) -> Response:
        try:
            fields = await request_fields(request, settings)
            out = await run_in_threadpool(fn, make_ctx(request, settings, store), fields)
        except (MlflowError, RoostError) as exc:
            return answer_error(request, exc)
        except Exception:
            log.exception("MLflow endpoint %s %s failed", request.method, request.url.path)
            return error_response("INTERNAL_ERROR", "internal error (see the server log)")
        return JSONResponse(out)

    return run


# -- fields ------------------------------------------------------------------------------------------------------
def text(fields: dict[str, Any], name: str, required: bool = True) -> str | None:
    """A string field (MLflow's message when a required one is missing)."""
    v = fields.get(name)
    if v is None or v == "":
        if required:
            raise bad(f"Missing value for required parameter '{name}'")
        return None
    if isinstance(v, list | dict):
        raise bad(f"parameter '{name}' must be a string")
    return str(v)


def need_text(fields: dict[str, Any], name: str) -> str:
    """A required string field."""
    v = text(fields, name)
    assert v is not None
    return v


def integer(fields: dict[str, Any], name: str, default: int | None = None) -> int | None:
    """An int64 field (proto JSON sends them as numbers or strings)."""
    v = fields.get(name)
    if v is None or v == "":
        return default
    try:
        if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
            raise ValueError
        return int(v)
    except (TypeError, ValueError):
        raise bad(f"parameter '{name}' must be an integer, got {str(v)[:60]!r}") from None


def number(value: Any, what: str) -> float:
    """A double field: a number, or "NaN" / "Infinity" / "-Infinity" as proto JSON writes them."""
    if isinstance(value, bool):
        raise bad(f"{what} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise bad(f"{what} must be a number, got {str(value)[:60]!r}") from None


def listed(fields: dict[str, Any], name: str) -> list[Any]:
    """A repeated field as a list."""
    v = fields.get(name)
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def max_results(fields: dict[str, Any], default: int, most: int) -> int:
    """max_results in 1 … most."""
    n = integer(fields, "max_results", default)
    assert n is not None
    if not 1 <= n <= most:
        raise bad(f"Invalid value {n} for parameter 'max_results' supplied: it must be between 1 and {most}")
    return n


# -- times and tokens -------------------------------------------------------------------------------------------
def ms(dt: datetime | None) -> int | None:
    """A datetime as epoch milliseconds."""
    return None if dt is None else int(round(dt.timestamp() * 1000))


def from_ms(value: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def seconds_to_ms(ts: float) -> int:
    """A metric timestamp (unix seconds, roost) as milliseconds (MLflow)."""
    return int(round(ts * 1000)) if math.isfinite(ts) else 0


def token(state: dict[str, Any]) -> str:
    """An opaque page token."""
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def untoken(raw: str | None) -> dict[str, Any]:
    """The state in a page token ({} for none); INVALID_PARAMETER_VALUE for a token this server did not make."""
    if not raw:
        return {}
    try:
        state = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        raise bad(f"invalid page_token {raw[:40]!r}: pass back the next_page_token of the previous page") from None
    if not isinstance(state, dict):
        raise bad(f"invalid page_token {raw[:40]!r}: pass back the next_page_token of the previous page")
    return state


def offset_page(items: list[Any], fields: dict[str, Any], default: int, most: int) -> tuple[list[Any], str | None]:
    """A page of `items` by offset tokens: (the page, the next token or None)."""
    n = max_results(fields, default, most)
    start = integer(untoken(text(fields, "page_token", required=False)), "offset", 0) or 0
    page = items[start : start + n]
    return page, token({"offset": start + n}) if start + n < len(items) else None
