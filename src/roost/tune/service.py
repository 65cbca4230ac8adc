"""The ask/tell HTTP service: a small Starlette app over the Engine; all state lives in the repository store.

    POST /studies                              {space, direction, objective, sampler, prune, max_trials, ...}
    GET  /studies                              every study (no trials)
    GET  /studies/{id}                         study, counts, best trial, history
    POST /studies/{id}/ask                     {client_id, lease_s} -> {trial | null, done, retry_after}
    POST /studies/{id}/trials                  {params, value?}: enqueue a point, or record a known result
    POST /studies/{id}/trials/{n}/tell         {value} | {state: fail|pruned, reason}
    POST /studies/{id}/trials/{n}/report       {step, value} -> {prune}

Errors: unknown study/trial → 404, a second tell → 409 with the stored outcome, a value outside the space (or any
invalid field) → 422 naming it. Handlers are sync: Starlette runs them in its thread pool, and each one is a single
store transaction, so concurrent requests (or two service processes on one store) serialise in the database.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import ConfigError, ConflictError, NotFoundError, RoostError
from roost.tune.engine import Engine, TellConflict
from roost.tune.space import SpaceError

log = logging.getLogger(__name__)

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


def _body(raw: bytes, allowed: set[str]) -> dict:
    """Parse a JSON object body (NaN allowed) and reject unknown fields by name."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"body: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError("body: must be a JSON object")
    for k in body:
        if k not in allowed:
            raise ConfigError(f"{k}: unknown field", hint="allowed: " + ", ".join(sorted(allowed)))
    return body


def _int(value: str, what: str) -> int:
    """A path segment as an int (404 when it is not one: no such trial)."""
    try:
        return int(value)
    except ValueError:
        raise NotFoundError(f"{what} {value!r} not found") from None


def create_app(engine: Engine | None = None, token: str | None = None) -> Starlette:
    """The service app over `engine` (default: the current workspace's store); optional bearer token."""
    holder: dict[str, Engine] = {}

    def eng() -> Engine:
        if "e" not in holder:
            holder["e"] = engine or Engine()
        return holder["e"]

    def endpoint(fn: Callable[[Request, bytes], Any], status: int = 200) -> Callable:
        async def handler(request: Request) -> Response:
            if token is not None:
                got = request.headers.get("authorization", "")
                if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
                    return _json(
                        {"error": "missing or wrong bearer token", "hint": "send Authorization: Bearer <token>"}, 401
                    )
            raw = await request.body()
            from starlette.concurrency import run_in_threadpool

            try:
                return _json(await run_in_threadpool(fn, request, raw), status)
            except NotFoundError as exc:
                return _error(404, exc)
            except TellConflict as exc:
                return _error(409, exc, stored=exc.stored)
            except ConflictError as exc:
                return _error(409, exc)
            except SpaceError as exc:
                return _error(422, exc, param=exc.param)
            except ConfigError as exc:
                return _error(422, exc, param=exc.message.split(":", 1)[0])
            except RoostError as exc:
                return _error(400, exc)

        return handler

    def health(request: Request, raw: bytes) -> dict:
        return {"ok": True}

    def list_studies(request: Request, raw: bytes) -> dict:
        return {"studies": eng().list_studies()}

    def create(request: Request, raw: bytes) -> dict:
        b = _body(raw, CREATE_FIELDS)
        if "space" not in b:
            raise ConfigError("space: required", hint='e.g. {"space": {"lr": {"loguniform": [1e-4, 0.1]}}}')
        return eng().create_study(
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

    def get_study(request: Request, raw: bytes) -> dict:
        return eng().study(request.path_params["sid"])

    def ask(request: Request, raw: bytes) -> dict:
        b = _body(raw, {"client_id", "lease_s"})
        lease = b.get("lease_s")
        if lease is not None and (isinstance(lease, bool) or not isinstance(lease, (int, float)) or lease <= 0):
            raise ConfigError(f"lease_s: must be a positive number of seconds, got {lease!r}")
        cid = b.get("client_id")
        return eng().ask(request.path_params["sid"], client_id=None if cid is None else str(cid), lease_s=lease)

    def add(request: Request, raw: bytes) -> dict:
        b = _body(raw, {"params", "value", "attrs"})
        return eng().add_trial(request.path_params["sid"], b.get("params") or {}, b.get("value"), b.get("attrs"))

    def tell(request: Request, raw: bytes) -> dict:
        b = _body(raw, {"value", "state", "reason", "attrs", "client_id"})
        return eng().tell(
            request.path_params["sid"],
            _int(request.path_params["n"], "trial"),
            b.get("value"),
            b.get("state") or "complete",
            b.get("reason"),
            b.get("attrs"),
        )

    def report(request: Request, raw: bytes) -> dict:
        b = _body(raw, {"step", "value", "client_id"})
        for k in ("step", "value"):
            if k not in b:
                raise ConfigError(f"{k}: required")
        return eng().report(request.path_params["sid"], _int(request.path_params["n"], "trial"), b["step"], b["value"])

    routes = [
        Route("/health", endpoint(health), methods=["GET"]),
        Route("/studies", endpoint(list_studies), methods=["GET"]),
        Route("/studies", endpoint(create, 201), methods=["POST"]),
        Route("/studies/{sid}", endpoint(get_study), methods=["GET"]),
        Route("/studies/{sid}/ask", endpoint(ask), methods=["POST"]),
        Route("/studies/{sid}/trials", endpoint(add, 201), methods=["POST"]),
        Route("/studies/{sid}/trials/{n}/tell", endpoint(tell), methods=["POST"]),
        Route("/studies/{sid}/trials/{n}/report", endpoint(report), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def serve(host: str = "127.0.0.1", port: int = 8765, token: str | None = None) -> None:
    """Run the service with uvicorn until interrupted (Optuna is imported up front, not on the first ask)."""
    import optuna  # noqa: F401 - warm the import before taking requests
    import uvicorn

    app = create_app(Engine(), token=token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
