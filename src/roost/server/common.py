"""What every REST endpoint of the team server shares: the JSON body (size-limited, validated), who is asking, the
permission checks on runs by their experiment, and the proxy URIs clients see instead of storage URIs."""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from roost import artifacts
from roost.errors import NotFoundError, RoostError
from roost.registry.sqlstore import SqlStore, sql_store
from roost.registry.wire import dumps, loads
from roost.server import permissions
from roost.server.audit import AUDIT_KEY
from roost.server.identity import Identity, identity_of
from roost.server.settings import ServerSettings

PROXY_MARK = "/api/v1/artifacts/runs/"
_PROXIED = re.compile(r"^roost\+https?://[^/]+" + re.escape(PROXY_MARK) + r"([0-9A-Za-z_-]{1,64})(?:/(.*))?$")


class TooLarge(RoostError):
    """A request body over the server's limit (HTTP 413)."""

    status = 413


@dataclass
class Call:
    """One API request, as the synchronous endpoint functions see it."""

    request: Request
    body: Any
    identity: Identity
    settings: ServerSettings
    store: SqlStore

    def path(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])

    def field(self, name: str, kind: type | tuple[type, ...], default: Any = ..., optional: bool = False) -> Any:
        """Body field `name` of type `kind` (400 naming the field when missing or of another type)."""
        if not isinstance(self.body, dict):
            raise RoostError("the request body must be a JSON object", hint=f"send {{{name!r}: …}}")
        if name not in self.body or (self.body[name] is None and optional):
            if default is ...:
                raise RoostError(f"field {name!r} is missing from the request body")
            return default
        value = self.body[name]
        bad_bool = isinstance(value, bool) and kind in (int, float)
        if bad_bool or not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise RoostError(f"field {name!r} must be {want}, got {type(value).__name__}")
        return value

    def require(self, kind: str, name: str, role: str) -> None:
        """403 unless the caller holds `role` on (kind, name)."""
        permissions.require(self.store, self.identity, kind, name, role, self.settings.default_role)

    def readable(self, kind: str, name: str) -> bool:
        """Whether the caller may read (kind, name)."""
        from roost.server.identity import rank

        return rank(permissions.role_on(self.store, self.identity, kind, name, self.settings.default_role)) >= 1

    def require_run(self, run_id: str, role: str) -> str:
        """The experiment of run `run_id` (full id) after checking `role` on it; 404 when there is no such run."""
        exp = experiment_of(self.store, run_id)
        self.require("experiment", exp, role)
        return exp

    def user(self) -> str:
        """The name of the caller."""
        return self.identity.name

    def base(self) -> str:
        """How clients reach this server: settings.public_url, else the request's scheme://host."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        return f"{self.request.url.scheme}://{self.request.url.netloc}"

    def proxy_uri(self, run_id: str, rel: str = "") -> str:
        """The artifact URI a client uses for run `run_id` (roost+http(s)://HOST/api/v1/artifacts/runs/ID[/rel])."""
        uri = f"roost+{self.base()}{PROXY_MARK}{run_id}"
        return uri + "/" + rel.lstrip("/") if rel else uri

    def client_run(self, run: dict[str, Any]) -> dict[str, Any]:
        """A run record as clients see it (artifact_uri through the proxy)."""
        return {**run, "artifact_uri": self.proxy_uri(run["run_id"])}


_exp_cache: dict[str, str] = {}  # run id -> experiment name (runs never change experiment)
_exp_lock = threading.Lock()


def experiment_of(store: SqlStore, run_id: str) -> str:
    """The experiment name of run `run_id`; NotFoundError when absent."""
    found = _exp_cache.get(run_id)
    if found is None:
        found = store.experiments_of([run_id]).get(run_id)
        if found is None:
            raise NotFoundError(f"run {run_id!r} not found", hint="list runs with `roost runs list`")
        with _exp_lock:
            if len(_exp_cache) > 100_000:
                _exp_cache.clear()
            _exp_cache[run_id] = found
    return found


def real_source(store: SqlStore, source: str) -> tuple[str, str | None]:
    """A client's artifact URI → (the storage URI behind the proxy, its run id); other URIs unchanged."""
    m = _PROXIED.match(source)
    if m is None:
        return source, None
    run_id, rel = m.group(1), m.group(2) or ""
    run = store.runs_by_ids([run_id], reap=False).get(run_id)
    if run is None:
        raise NotFoundError(f"run {run_id!r} not found", hint="register from a run that exists")
    return artifacts.safe_join(run["artifact_uri"], rel), run_id


def who(request: Request) -> Identity:
    """The caller's Identity (401 when the auth middleware left none: fails closed)."""
    return identity_of(request)


async def read_body(request: Request, limit: int) -> Any:
    """The JSON body (None when empty), refused past `limit` bytes (413) or when not JSON (400)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {int(declared):,} bytes is over the limit of {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return loads(raw)
    except ValueError as exc:
        raise RoostError(f"request body is not valid JSON: {exc}") from None


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON answer (datetimes ISO 8601)."""
    return Response(dumps(value), status_code=status, media_type="application/json")


Handler = Callable[[Call], Any]


def endpoint(settings: ServerSettings, fn: Handler, read: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """An async Starlette endpoint that reads the body and runs `fn(call)` in the threadpool. `read`: a POST that
    only reads (a search): not a write for the audit log, which still records it when refused."""

    async def handle(request: Request) -> Response:
        if read:
            request.scope.setdefault(AUDIT_KEY, {})["read"] = True
        ident = who(request)
        body = await read_body(request, settings.max_body_bytes) if request.method in ("POST", "PUT", "PATCH") else None
        call = Call(request, body, ident, settings, sql_store(settings.store_url))
        out = await run_in_threadpool(fn, call)
        return out if isinstance(out, Response) else json_response(out)

    return handle
