"""REST API v1, continued: the model registry (versions, aliases, resolve), stored objects and retention. Model
version sources under a run's artifacts are handed to clients as artifact-proxy URIs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.routing import BaseRoute, Route

from roost.errors import ConflictError, RoostError
from roost.registry.modelreg import ModelVersionInfo, has_alias, parse_uri, version_number
from roost.server import permissions
from roost.server.common import Call, endpoint, experiment_of, real_source
from roost.server.settings import ServerSettings


def _client_version(call: Call, v: ModelVersionInfo) -> dict[str, Any]:
    """A version as clients see it: a source inside its run's artifacts becomes a proxy URI."""
    out = v.to_dict()
    out.pop("local_path", None)
    if v.run_id:
        run = call.store.runs_by_ids([v.run_id], reap=False).get(v.run_id)
        root = run["artifact_uri"].rstrip("/") if run else None
        if root and (v.source == root or v.source.startswith(root + "/")):
            out["source"] = call.proxy_uri(v.run_id, v.source[len(root) :].lstrip("/"))
    return out


# -- models -------------------------------------------------------------------------------------------------
def register(call: Call) -> Any:
    """The next version of a model from a run's artifacts (edit on the model; read on the run's experiment)."""
    name = call.path("name")
    source, proxied_run = real_source(call.store, call.field("source", str))
    run_id = call.field("run_id", str, None, optional=True) or proxied_run
    if run_id is None:
        raise RoostError("field 'run_id' is required: the server registers packages logged to runs")
    if proxied_run is not None and proxied_run != run_id:
        raise RoostError("field 'source' is inside another run's artifacts than 'run_id'")
    call.require_run(run_id, "read")
    if source == call.field("source", str):  # not a proxy URI: it must be inside the run's own artifacts
        run = call.store.get_run(run_id)
        root = run["artifact_uri"].rstrip("/")
        if not (source == root or source.startswith(root + "/")):
            raise RoostError("field 'source' must be inside the run's artifacts (its artifact_uri)")
    if name in {m["name"] for m in call.store.list_models()}:
        call.require("model", name, "edit")
        return _client_version(call, call.store.register_model(name, source, run_id))
    v = call.store.register_model(name, source, run_id)
    permissions.on_create(call.store, call.identity, "model", name)
    return _client_version(call, v)


def list_models(call: Call) -> Any:
    """Registered models the caller may read."""
    return {"models": [m for m in call.store.list_models() if call.readable("model", m["name"])]}


def list_versions(call: Call) -> Any:
    """Versions of a model, oldest first."""
    name = call.path("name")
    call.require("model", name, "read")
    return {"versions": [_client_version(call, v) for v in call.store.list_versions(name)]}


def get_version(call: Call) -> Any:
    """One version of a model."""
    name = call.path("name")
    call.require("model", name, "read")
    return _client_version(call, call.store.get_version(name, version_number(call.path("version"))))


def resolve(call: Call) -> Any:
    """'name@alias' | 'name/3' | 'name' → its version (no download)."""
    uri = call.request.query_params.get("uri") or ""
    call.require("model", parse_uri(uri)[0], "read")
    return _client_version(call, call.store.lookup_version(uri))


def set_alias(call: Call) -> Any:
    """Point name@alias at a version: a new alias needs edit, moving one needs manage."""
    name, alias = call.path("name"), call.path("alias")
    call.require("model", name, "manage" if has_alias(call.store, name, alias) else "edit")
    moved = call.store.set_alias(name, call.field("version", (int, str)), alias, user=call.user())
    return {"name": name, "alias": alias, "moved": moved}


def delete_alias(call: Call) -> Any:
    """Remove name@alias (manage)."""
    name, alias = call.path("name"), call.path("alias")
    call.require("model", name, "manage")
    call.store.delete_alias(name, alias, user=call.user())
    return {"name": name, "alias": alias}


def alias_history(call: Call) -> Any:
    """Every alias move of a model."""
    name = call.path("name")
    call.require("model", name, "read")
    return {"history": call.store.alias_history(name)}


# -- stored objects (kind 'object', named by the object's kind) ---------------------------------------------
def list_objects(call: Call) -> Any:
    """All objects of a kind."""
    kind = call.path("kind")
    call.require("object", kind, "read")
    return {"objects": call.store.list_objects(kind)}


def get_object(call: Call) -> Any:
    """One object (spec null when absent)."""
    kind = call.path("kind")
    call.require("object", kind, "read")
    return {"spec": call.store.get_object(kind, call.path("name"))}


def put_object(call: Call) -> Any:
    """Insert or replace an object; with check=true only if it still is `expect` (409 otherwise)."""
    kind, name = call.path("kind"), call.path("name")
    call.require("object", kind, "edit")
    spec: dict[str, Any] = call.field("spec", dict)
    if not call.field("check", bool, False):
        call.store.put_object(kind, name, spec)
        return {"kind": kind, "name": name}
    expect = call.field("expect", dict, None, optional=True)

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        if current != expect:
            raise ConflictError(f"object {kind}/{name} changed since it was read", hint="read it again")
        return spec

    call.store.update_object(kind, name, change)
    return {"kind": kind, "name": name}


def delete_object(call: Call) -> Any:
    """Remove an object (manage: deleting needs manage)."""
    kind = call.path("kind")
    call.require("object", kind, "manage")
    call.store.delete_object(kind, call.path("name"))
    return {"kind": kind, "name": call.path("name")}


# -- retention ----------------------------------------------------------------------------------------------
def change_stage(call: Call) -> Any:
    """Delete/archive/restore runs: manage on the experiment of every run selected."""
    action = call.path("action")
    args = {
        "run_ids": [str(i) for i in call.field("run_ids", list, [])],
        "filter": call.field("filter", str, None, optional=True),
        "experiment": call.field("experiment", (str, list), None, optional=True),
        "older_than": call.field("older_than", (str, int, float), None, optional=True),
        "force": call.field("force", bool, False),
    }
    planned = call.store.change_stage(action, dry_run=True, **args)
    selected = [*planned.run_ids, *planned.skipped_running]  # a skipped run is named in the answer too
    for exp in sorted({experiment_of(call.store, rid) for rid in selected}):
        call.require("experiment", exp, "manage")
    if call.field("dry_run", bool, False) or not planned.run_ids:
        return asdict(planned)
    args["run_ids"] = planned.run_ids  # exactly the runs checked (runs added since are not touched)
    return asdict(call.store.change_stage(action, **args))


def gc(call: Call) -> Any:
    """Remove deleted runs for good (admin)."""
    permissions.require_admin(call.identity)
    report = call.store.gc(
        call.field("older_than", (str, int, float), None, optional=True),
        call.field("dry_run", bool, False),
        call.field("batch_size", int, 100),
        call.field("vacuum", bool, False),
    )
    return asdict(report)


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """Routes of models, objects and retention (under /api/v1)."""

    def r(path: str, fn: Any, method: str) -> Route:
        return Route(path, endpoint(settings, fn), methods=[method])

    return [
        r("/models", list_models, "GET"),
        r("/models/resolve", resolve, "GET"),
        r("/models/{name}/versions", register, "POST"),
        r("/models/{name}/versions", list_versions, "GET"),
        r("/models/{name}/versions/{version}", get_version, "GET"),
        r("/models/{name}/aliases/{alias}", set_alias, "PUT"),
        r("/models/{name}/aliases/{alias}", delete_alias, "DELETE"),
        r("/models/{name}/alias-history", alias_history, "GET"),
        r("/objects/{kind}", list_objects, "GET"),
        r("/objects/{kind}/{name}", get_object, "GET"),
        r("/objects/{kind}/{name}", put_object, "PUT"),
        r("/objects/{kind}/{name}", delete_object, "DELETE"),
        r("/retention/gc", gc, "POST"),
        r("/retention/{action}", change_stage, "POST"),
    ]
