"""HTTP routes of a many-model server (roost.serve.lazy): inference loads the model first and keeps it from
eviction until answered; model ready and metadata report its state; the V2 repository index lists every model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from roost.serve.codec import bad
from roost.serve.protocols import tfserving, v2

if TYPE_CHECKING:
    from roost.serve.app import Receive, Scope
    from roost.serve.lazy import LazyRepository
    from roost.serve.reqid import Call

JSON = b"application/json"
Reply = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]


def _json(obj: Any, status: int = 200) -> Reply:
    """A JSON reply."""
    return status, orjson.dumps(obj), JSON, []


def _lazy(app: Any) -> LazyRepository:
    """The app's many-model repository."""
    lazy: LazyRepository | None = app.lazy
    assert lazy is not None
    return lazy


async def v2_model(
    app: Any, name: str, version: str | None, action: str, scope: Scope, receive: Receive, headers: Any, call: Call
) -> Reply:
    """/v2/models/{name}[@alias][/versions/{v}][/infer|/ready]: infer and metadata load the model on demand."""
    lazy = _lazy(app)
    key = lazy.target(name, version)  # 404 for a name the registry selection does not serve
    call.model = key[0]
    if action == "ready":
        state, reason = lazy.state(key)
        ok = not (key in lazy.failed and state == "UNAVAILABLE")  # unloaded models load on demand: ready
        body = {"name": key[0], "version": str(key[1]), "ready": ok, "state": state, "reason": reason}
        return _json(body, 200 if ok else 503)
    if action == "infer":
        call.protocol = "v2"
    async with lazy.use(name, version) as model:
        if action != "infer":
            return _json({**v2.model_metadata(model), "state": "READY"})
        body = await app._read_body(scope, receive, headers)
        return await v2.infer(app, name, version, body, headers, call)


async def tf_model(
    app: Any,
    name: str,
    version: str | None,
    label: str | None,
    action: str,
    scope: Scope,
    receive: Receive,
    headers: Any,
    call: Call,
) -> Reply:
    """/v1/models/{name}[/versions/{v}|/labels/{alias}][:predict|/metadata]: a TF-Serving label is an alias."""
    lazy = _lazy(app)
    if label is not None:
        if "@" in name:
            raise bad("give the alias once: /v1/models/NAME/labels/ALIAS or /v1/models/NAME@ALIAS")
        name = f"{name}@{label}"
    call.model = lazy.target(name, version)[0]
    if action == "predict":
        call.protocol = "tfserving"
    async with lazy.use(name, version) as model:
        if action == "predict":
            body = await app._read_body(scope, receive, headers)
            return await tfserving.predict(app, name, version, None, body, call.request_id)
        return _json(tfserving.metadata(model) if action == "metadata" else tfserving.status(model))


async def index(app: Any, scope: Scope, receive: Receive, headers: Any) -> Reply:
    """POST /v2/repository/index [{"ready": true}]: every model with its state (READY, LOADING, UNAVAILABLE) and why;
    a many-model server lists every served alias (this worker's state: each worker loads on its own)."""
    body = await app._read_body(scope, receive, headers)
    ready_only = False
    if body.strip():
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise bad(f"request body is not valid JSON: {exc}") from None
        if not isinstance(req, dict) or not isinstance(req.get("ready", False), bool):
            raise bad('the body must be a JSON object such as {"ready": true}')
        ready_only = req.get("ready", False)
    if app.lazy is not None:
        return _json(app.lazy.index(ready_only))
    rows = [
        {"name": name, "version": slot.current.version, "state": "READY", "reason": ""}
        for name, slot in app.repo.slots.items()
    ]
    return _json(rows)
