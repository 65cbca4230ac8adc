"""The ask/tell HTTP service: a small Starlette app over the Engine; all state lives in the repository store.

    POST /studies                              {space, direction, objective, sampler, prune, max_trials, ...}
    GET  /studies                              every study (no trials)
    GET  /studies/{id}                         study, counts, best trial, history
    POST /studies/{id}/ask                     {client_id, lease_s} -> {trial | null, done, retry_after}
                                               {client_id, lease_s, n} -> {trials: [up to n], done, retry_after}
    POST /studies/{id}/tell                    {results: [{number, value, state?, reason?}]} -> {results}
    POST /studies/{id}/trials                  {params, value?}: enqueue a point, or record a known result
    POST /studies/{id}/trials/{n}/tell         {value} | {state: fail|pruned, reason}
    POST /studies/{id}/trials/{n}/report       {step, value} -> {prune}
    POST /studies/{id}/abandon                 {client_ids, reason?} -> {failed}: fail their running trials

Errors: unknown study/trial → 404, a second tell → 409 with the stored outcome, a value outside the space (or any
invalid field) → 422 naming it. Handlers are sync: Starlette runs them in its thread pool, and each one is a single
store transaction, so concurrent requests (or two service processes on one store) serialise in the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import ConfigError, ConflictError, NotFoundError, RoostError
from roost.netpolicy import LOOPBACK_NAMES, Guard, allowed_hosts
from roost.tune.engine import Engine, TellConflict, check_lease, check_seed
from roost.tune.search_space import SpaceError

log = logging.getLogger(__name__)
MAX_NAME = 200  # characters of a study name, objective or client id
MAX_REASON = 10_000  # characters of a failure reason
MAX_BODY = 16 << 20  # bytes of a request body
_INT64 = 2**63
__all__ = ["Handlers", "create_app", "routes", "serve"]

CREATE_FIELDS = {
    "space",
    "direction",
    "objective",
    "sampler",
    "prune",
    "pruner",
    "seed",
    "max_trials",
    "lease_s",
    "name",
    "attrs",
}


def _json(obj: Any, status: int = 200) -> Response:
    """An orjson response (NaN and infinities become null)."""
    import orjson

    return Response(orjson.dumps(obj, default=str), status_code=status, media_type="application/json")


def _error(status: int, exc: RoostError, **extra: Any) -> Response:
    """An error body: message, hint and any extra fields."""
    return _json({"error": exc.message, "hint": exc.hint, **extra}, status)


def _body(raw: bytes, allowed: set[str]) -> dict[str, Any]:
    """Parse a JSON object body (NaN allowed) and reject unknown fields by name."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"body: not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise ConfigError("body: JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise ConfigError("body: must be a JSON object")
    for k in body:
        if k not in allowed:
            raise ConfigError(f"{str(k)[:80]}: unknown field", hint="allowed: " + ", ".join(sorted(allowed)))
    where = _huge_int(body)
    if where is not None:
        raise ConfigError(f"{where}: an integer outside the 64-bit range", hint="send a number from -2**63 to 2**63-1")
    return body


def _huge_int(body: dict[str, Any]) -> str | None:
    """The path (e.g. `results[0].number`) of the first integer in `body` that no 64-bit store column holds."""
    stack: list[tuple[str, Any]] = [(str(k), v) for k, v in body.items()]
    while stack:
        path, v = stack.pop()
        if v.__class__ is int and not -_INT64 <= v < _INT64:
            return path
        if isinstance(v, dict):
            stack.extend((f"{path}.{k}", x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
    return None


def _text(b: dict[str, Any], key: str) -> str | None:
    """An optional short string field of a body, checked."""
    v = b.get(key)
    if v is not None and (not isinstance(v, str) or len(v) > MAX_NAME):
        raise ConfigError(f"{key}: must be a string of at most {MAX_NAME} characters, got {str(v)[:40]!r}")
    return v


def _outcome(item: dict[str, Any], where: str = "") -> None:
    """The attrs (a JSON object) and reason (a string of at most MAX_REASON characters) of a tell, checked."""
    v = item.get("attrs")
    if v is not None and not isinstance(v, dict):
        raise ConfigError(f"{where}attrs: must be a JSON object, got {type(v).__name__}")
    v = item.get("reason")
    if v is not None and (not isinstance(v, str) or len(v) > MAX_REASON):
        raise ConfigError(f"{where}reason: must be a string of at most {MAX_REASON:,} characters")


def _create_checks(b: dict[str, Any]) -> None:
    """Field types the engine would otherwise store and fail on later (a seed NumPy refuses at the first ask)."""
    check_seed(b.get("seed"))
    if b.get("max_trials").__class__ is bool:
        raise ConfigError(f"max_trials: must be a positive integer, got {b['max_trials']!r}")
    _lease(b)
    _text(b, "name")
    _text(b, "objective")
    _outcome({"attrs": b.get("attrs")})


def _int(value: str, what: str) -> int:
    """A path segment as an int (404 when it is not one: no such trial)."""
    if not (value.isascii() and value.isdigit()):  # int() also reads " 1", "+1" and non-ASCII digits
        raise NotFoundError(f"{what} {value[:40]!r} not found")
    return int(value)


Handler = Callable[[Request, bytes], Any]


def _error_response(exc: RoostError) -> Response:
    """The status and body for an error a handler raised (its own `status` (401, 403 behind the team server), else
    404, 409 with the stored outcome, 422 naming a field)."""
    declared = getattr(exc, "status", None)
    if isinstance(declared, int):
        return _error(declared, exc)
    if isinstance(exc, NotFoundError):
        return _error(404, exc)
    if isinstance(exc, TellConflict):
        return _error(409, exc, stored=exc.stored)
    if isinstance(exc, ConflictError):
        return _error(409, exc)
    if isinstance(exc, SpaceError):
        return _error(422, exc, param=exc.param)
    if isinstance(exc, ConfigError):
        return _error(422, exc, param=exc.message.split(":", 1)[0])
    return _error(400, exc)


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None past MAX_BODY bytes (by its Content-Length, or while streaming one without)."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(fn: Handler, status: int = 200) -> Callable[[Request], Awaitable[Response]]:
    """An async endpoint: run the sync handler in the thread pool, map roost errors (the token, Host, Origin and
    content type are checked before, by the app's Guard)."""
    from starlette.concurrency import run_in_threadpool

    async def handler(request: Request) -> Response:
        raw = await _read_body(request)
        if raw is None:
            limit = f"request body exceeds the limit of {MAX_BODY:,} bytes"
            return _json({"error": limit, "hint": "send fewer trials or results per request"}, 413)
        try:
            return _json(await run_in_threadpool(fn, request, raw), status)
        except RoostError as exc:
            return _error_response(exc)

    return handler


def _lease(b: dict[str, Any]) -> float | None:
    """The optional lease_s of an ask body, checked."""
    lease: float | None = b.get("lease_s")
    check_lease(lease)
    return lease


class Handlers:
    """The service's request handlers over one Engine (made on first use: the workspace's store by default)."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine (created lazily)."""
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def health(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Liveness."""
        return {"ok": True}

    def list_studies(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Every study record."""
        return {"studies": self.engine.list_studies()}

    def create(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Create a study."""
        b = _body(raw, CREATE_FIELDS)
        if "space" not in b:
            raise ConfigError("space: required", hint='e.g. {"space": {"lr": {"loguniform": [1e-4, 0.1]}}}')
        _create_checks(b)
        return self.engine.create_study(
            b["space"],
            direction=b.get("direction", "minimize"),
            objective=b.get("objective", "value"),
            sampler=b.get("sampler", "auto"),
            pruner=b.get("prune", b.get("pruner")),
            seed=b.get("seed"),
            max_trials=b.get("max_trials"),
            lease_s=b.get("lease_s", 600.0),
            name=b.get("name"),
            attrs=b.get("attrs"),
        )

    def get_study(self, request: Request, raw: bytes) -> dict[str, Any]:
        """A study with its trials."""
        return self.engine.study(request.path_params["sid"])

    def ask(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Lease one trial, or up to `n` with a batch ask."""
        b = _body(raw, {"client_id", "lease_s", "n"})
        cid = b.get("client_id")
        if cid.__class__ is int:
            cid = str(cid)
        cid = _text(b | {"client_id": cid}, "client_id")
        if "n" in b:
            return self.engine.ask_many(request.path_params["sid"], b["n"], client_id=cid, lease_s=_lease(b))
        return self.engine.ask(request.path_params["sid"], client_id=cid, lease_s=_lease(b))

    def add(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Enqueue a point or record a known result."""
        b = _body(raw, {"params", "value", "attrs"})
        _outcome(b)
        return self.engine.add_trial(request.path_params["sid"], b.get("params") or {}, b.get("value"), b.get("attrs"))

    def tell(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Finish one trial."""
        b = _body(raw, {"value", "state", "reason", "attrs", "client_id"})
        _outcome(b)
        return self.engine.tell(
            request.path_params["sid"],
            _int(request.path_params["n"], "trial"),
            b.get("value"),
            b.get("state") or "complete",
            b.get("reason"),
            b.get("attrs"),
        )

    def tell_many(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Finish many trials in one transaction."""
        b = _body(raw, {"results", "client_id"})
        if "results" not in b:
            raise ConfigError("results: required", hint='e.g. {"results": [{"number": 0, "value": 0.5}]}')
        for i, item in enumerate(b["results"] if isinstance(b["results"], list) else []):
            if isinstance(item, dict):
                _outcome(item, f"results[{i}].")
        return {"results": self.engine.tell_many(request.path_params["sid"], b["results"])}

    def report(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Record an intermediate value; answers whether to prune."""
        b = _body(raw, {"step", "value", "client_id"})
        for k in ("step", "value"):
            if k not in b:
                raise ConfigError(f"{k}: required")
        sid, n = request.path_params["sid"], _int(request.path_params["n"], "trial")
        return self.engine.report(sid, n, b["step"], b["value"])

    def abandon(self, request: Request, raw: bytes) -> dict[str, Any]:
        """Fail the running trials held by these clients (a stopped tuning job)."""
        b = _body(raw, {"client_ids", "reason"})
        ids = b.get("client_ids")
        if not isinstance(ids, list) or not all(isinstance(c, str) and len(c) <= MAX_NAME for c in ids):
            raise ConfigError(f"client_ids: required, a list of strings of at most {MAX_NAME} characters")
        _outcome(b)
        return {"failed": self.engine.abandon(request.path_params["sid"], ids, b.get("reason") or "interrupted")}


def routes(h: Handlers) -> list[Route]:
    """The service's routes over handlers `h`."""
    table: list[tuple[str, Handler, str, int]] = [
        ("/health", h.health, "GET", 200),
        ("/studies", h.list_studies, "GET", 200),
        ("/studies", h.create, "POST", 201),
        ("/studies/{sid}", h.get_study, "GET", 200),
        ("/studies/{sid}/ask", h.ask, "POST", 200),
        ("/studies/{sid}/tell", h.tell_many, "POST", 200),
        ("/studies/{sid}/trials", h.add, "POST", 201),
        ("/studies/{sid}/trials/{n}/tell", h.tell, "POST", 200),
        ("/studies/{sid}/trials/{n}/report", h.report, "POST", 200),
        ("/studies/{sid}/abandon", h.abandon, "POST", 200),
    ]
    return [Route(path, _endpoint(fn, status), methods=[method]) for path, fn, method, status in table]


def create_app(
    engine: Engine | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_NAMES,
) -> Starlette:
    """The service app over `engine` (default: the current workspace's store) under roost's server policy
    (docs/security.md): the bearer token when given, the Host allow-list (None: no Host check), same-origin JSON
    state changes."""
    from starlette.middleware import Middleware

    from roost.netpolicy.limits import ConnStats
    from roost.netpolicy.metrics import metrics_route

    guard = Middleware(Guard, allowed_hosts=allowed_hosts, token=token)
    app = Starlette(routes=[*routes(Handlers(engine)), metrics_route()], middleware=[guard])
    app.state.conn_stats = ConnStats()  # counted by the connection protocol, read by GET /metrics
    return app


def serve(host: str = "127.0.0.1", port: int = 8765, token: str | None = None, allow_hosts: Sequence[str] = ()) -> None:
    """Run the service with uvicorn until interrupted (Optuna is imported up front, not on the first ask); it
    answers the Host names of `host`, the loopback names and `allow_hosts`."""
    import optuna  # noqa: F401 - warm the import before taking requests
    import uvicorn

    from roost.netpolicy.limits import ConnLimits, uvicorn_options

    app = create_app(Engine(), token=token, allowed_hosts=allowed_hosts(host, allow_hosts))
    opts = uvicorn_options(ConnLimits.from_env(), "roost tune serve", app.state.conn_stats)
    uvicorn.run(app, host=host, port=port, log_level="warning", **opts)
