"""REST API v1 of the team server (/api/v1): health, experiments and runs — what roost.registry.rest.RestStore calls.
Models, objects and retention are in api_models. Every endpoint checks the caller's role (roost.server.permissions)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.routing import BaseRoute, Route

from roost.errors import ConflictError, RoostError
from roost.registry import reads
from roost.registry.run import STATUSES, check_key, check_params, check_step, check_tags
from roost.server import api_models
from roost.server.common import Call, endpoint, json_response
from roost.server.settings import ServerSettings

_RUN_ID = re.compile(r"[0-9a-f]{32}")
_TEXT_FIELDS = {"name": 256, "git_commit": 64, "source": 4000, "parent_run_id": 32}
_PATCHABLE = ("status", "end_time", "name", "parent_run_id")


def _time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise RoostError(f"field {field!r} is not an ISO 8601 time: {str(value)[:40]!r}") from None


async def health(request: Any) -> Any:
    """Public liveness answer (no identity: the auth middleware lets it through unauthenticated)."""
    from roost import __version__

    return json_response({"status": "ok", "version": __version__})


def whoami(call: Call) -> Any:
    """Who the server takes the caller for."""
    ident = call.identity
    return {"name": ident.name if ident else None, "admin": bool(ident and ident.admin), "kind": ident and ident.kind}


# -- experiments --------------------------------------------------------------------------------------------
def create_experiment(call: Call) -> Any:
    """Get or create an experiment by name; its creator gets manage."""
    name = call.field("name", str)
    if not name.strip() or len(name) > 256:
        raise RoostError("field 'name' must be 1 to 256 characters")
    eid = call.store.experiment_id(name)
    if eid is not None:
        call.require("experiment", name, "read")
        return {"id": eid, "name": name}
    eid = call.store.get_or_create_experiment(name)
    from roost.server import permissions

    permissions.on_create(call.store, call.identity, "experiment", name)
    return {"id": eid, "name": name}


def list_experiments(call: Call) -> Any:
    """The experiments the caller may read."""
    return {"experiments": [e for e in call.store.list_experiments() if call.readable("experiment", e["name"])]}


# -- runs ---------------------------------------------------------------------------------------------------
def create_run(call: Call) -> Any:
    """Insert a RUNNING run: the server sets its user (the caller) and artifact root."""
    row = call.field("row", dict)
    run_id = row.get("id")
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RoostError("field 'row.id' must be 32 lowercase hex digits (a uuid4 hex)")
    eid = row.get("experiment_id")
    if not isinstance(eid, int) or isinstance(eid, bool):
        raise RoostError("field 'row.experiment_id' must be an integer")
    exp_name = call.store.experiment_name(eid)
    if exp_name is None:
        raise RoostError(f"field 'row.experiment_id': no experiment {eid}", hint="create it with POST /experiments")
    call.require("experiment", exp_name, "edit")
    clean: dict[str, Any] = {"id": run_id, "experiment_id": eid, "status": "RUNNING", "end_time": None}
    for f, longest in _TEXT_FIELDS.items():
        v = row.get(f)
        if v is not None and (not isinstance(v, str) or len(v) > longest):
            raise RoostError(f"field 'row.{f}' must be text of at most {longest} characters")
        clean[f] = v
    if row.get("git_dirty") is not None and not isinstance(row.get("git_dirty"), bool):
        raise RoostError("field 'row.git_dirty' must be true, false or null")
    clean["git_dirty"] = row.get("git_dirty")
    clean["start_time"] = _time(row.get("start_time"), "row.start_time") or _now()
    clean["heartbeat_at"] = clean["start_time"]
    clean["user"] = call.user() if call.identity is not None else row.get("user")
    clean["artifact_uri"] = f"{call.settings.artifact_root.rstrip('/')}/{eid}/{run_id}/artifacts"
    params = check_params(call.field("params", dict, {}))
    tags = check_tags(call.field("tags", dict, {}))
    try:
        call.store.insert_run(clean, params, tags)
    except IntegrityError:  # the same run sent again (a retry whose answer was lost): answer as the first time
        existing = call.store.runs_by_ids([run_id], reap=False).get(run_id)
        if existing is None or existing["experiment_id"] != eid:
            raise ConflictError(f"run {run_id} cannot be created (id taken or parent run unknown)") from None
    return {"run_id": run_id, "user": clean["user"], "artifact_uri": call.proxy_uri(run_id)}


def _now() -> datetime:
    from roost.registry.store import utcnow

    return utcnow()


def get_run(call: Call) -> Any:
    """A run by id or unique prefix."""
    run = call.store.get_run(call.path("run_id"))
    call.require_run(run["run_id"], "read")
    return call.client_run(run)


def runs_by_ids(call: Call) -> Any:
    """Several runs by full id (those the caller may read)."""
    ids = call.field("ids", list)
    if len(ids) > 10_000 or not all(isinstance(i, str) for i in ids):
        raise RoostError("field 'ids' must be a list of at most 10,000 run ids")
    found = call.store.runs_by_ids(ids, reap=bool(call.field("reap", bool, True)))
    return {"runs": {k: call.client_run(v) for k, v in found.items() if call.readable("experiment", v["experiment"])}}


def update_run(call: Call) -> Any:
    """Set status, end_time or name of a run."""
    run_id = call.path("run_id")
    call.require_run(run_id, "edit")
    fields: dict[str, Any] = {}
    for k, v in (call.body or {}).items():
        if k not in _PATCHABLE:
            raise RoostError(f"field {k!r} cannot be changed", hint="one of " + ", ".join(_PATCHABLE))
        fields[k] = v
    if "status" in fields and fields["status"] not in STATUSES:
        raise RoostError(f"field 'status' must be one of {', '.join(STATUSES)}")
    if "end_time" in fields:
        fields["end_time"] = _time(fields["end_time"], "end_time")
    for f in ("name", "parent_run_id"):
        if fields.get(f) is not None and (not isinstance(fields[f], str) or len(fields[f]) > _TEXT_FIELDS[f]):
            raise RoostError(f"field {f!r} must be text of at most {_TEXT_FIELDS[f]} characters")
    if fields.get("parent_run_id") is not None:
        call.require_run(fields["parent_run_id"], "read")
    call.store.update_run(run_id, **fields)
    return {"run_id": run_id}


def log_batch(call: Call) -> Any:
    """Params, tags and points of a run in one transaction, once per Idempotency-Key."""
    run_id = call.path("run_id")
    call.require_run(run_id, "edit")
    key = call.request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 128:
        raise RoostError("header Idempotency-Key must be 1 to 128 characters")
    points = []
    for i, p in enumerate(call.field("metrics", list, [])):
        if not isinstance(p, list) or len(p) != 4:
            raise RoostError(f"field 'metrics[{i}]' must be [key, value, step, timestamp]")
        try:
            value, ts = float(p[1]), float(p[3])
        except (TypeError, ValueError):
            raise RoostError(f"field 'metrics[{i}]': value and timestamp must be numbers") from None
        if math.isnan(value) or isinstance(p[2], bool) or not isinstance(p[2], int):
            raise RoostError(f"field 'metrics[{i}]': value must not be NaN, step must be an integer")
        points.append((check_key("metric", p[0]), value, check_step(p[2]), ts))
    finish = call.field("finish", list, None, optional=True)
    if finish is not None:
        if len(finish) != 2 or finish[0] not in STATUSES:
            raise RoostError(f"field 'finish' must be [status, end_time] with a status of {', '.join(STATUSES)}")
        finish = (finish[0], _time(finish[1], "finish[1]"))
    call.store.log_batch(
        run_id,
        params=check_params(call.field("params", dict, {})),
        tags=check_tags(call.field("tags", dict, {})),
        metrics=points,
        heartbeat=call.field("heartbeat", bool, False),
        finish=finish,
        idempotency_key=key,
    )
    return {"run_id": run_id, "points": len(points)}


def heartbeat(call: Call) -> Any:
    """Heartbeats of runs the caller may log to."""
    ids = call.field("run_ids", list)
    for rid in ids:
        call.require_run(str(rid), "edit")
    call.store.heartbeat([str(i) for i in ids])
    return {"run_ids": ids}


def mark_lost(call: Call) -> Any:
    """Mark stale runs LOST (admin)."""
    from roost.server import permissions

    permissions.require_admin(call.identity)
    return {"run_ids": call.store.mark_lost(call.field("timeout_s", (int, float), None, optional=True))}


def search(call: Call) -> Any:
    """Runs matching a filter, ordered, paged (limit/offset or keyset `after`), among experiments the caller reads."""
    exp = call.field("experiment", (str, list), None, optional=True)
    names = [exp] if isinstance(exp, str) else exp
    if names:
        for n in names:
            call.require("experiment", str(n), "read")
    elif not call.identity.admin:  # a 'none' grant shuts an account out even where the default role is read
        names = [n for n in reads.experiment_names(call.store) if call.readable("experiment", n)]
        if not names:
            return {"runs": []}
    after = call.field("after", list, None, optional=True)
    if after is not None:
        if len(after) != 2 or not isinstance(after[1], str):
            raise RoostError("field 'after' must be [start_time, run_id]")
        after = (_time(after[0], "after[0]"), after[1])
    # an absent limit is the default page; an explicit null (the client's limit=None) means every run
    absent = not isinstance(call.body, dict) or "limit" not in call.body
    limit = 1000 if absent else call.field("limit", int, None, optional=True)
    flt = call.field("filter", str, None, optional=True)
    runs = call.store.search_runs(
        flt,
        names or None,
        call.field("order_by", (str, list), None, optional=True),
        limit if limit is None or limit >= 0 else 1000,
        max(0, call.field("offset", int, 0)),
        after,
        [str(s) for s in call.field("stages", list, ["active"])],
    )
    out: dict[str, Any] = {"runs": [call.client_run(r) for r in runs]}
    if call.field("notices", bool, False, optional=True):  # the filter's notices in the same answer (one request)
        out["notices"] = call.store.filter_notices(flt, exp, runs) if flt and flt.strip() else []
    return out


def metric_history(call: Call) -> Any:
    """Every point of a run's metrics."""
    run_id = call.path("run_id")
    call.require_run(run_id, "read")
    return {"points": call.store.metric_history(run_id, call.request.query_params.get("key"))}


def delete_run(call: Call) -> Any:
    """Delete a run and its records (manage)."""
    run_id = call.path("run_id")
    call.require_run(run_id, "manage")
    call.store.delete_run(run_id)
    return {"run_id": run_id}


def delete_tags(call: Call) -> Any:
    """Remove tags of a run (edit)."""
    run_id = call.path("run_id")
    call.require_run(run_id, "edit")
    keys = call.field("keys", list)
    call.store.delete_tags(run_id, [str(k) for k in keys])
    return {"run_id": run_id}


def filter_notices(call: Call) -> Any:
    """Keys a filter names that no run of the (readable) experiments has."""
    exp = call.field("experiment", (str, list), None, optional=True)
    for n in [exp] if isinstance(exp, str) else exp or []:
        call.require("experiment", str(n), "read")
    return {"notices": call.store.filter_notices(call.field("filter", str, None, optional=True), exp)}


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """The /api/v1 routes."""

    def r(path: str, fn: Any, method: str, read: bool = False) -> Route:
        return Route(path, endpoint(settings, fn, read), methods=[method])

    return [
        Route("/health", health, methods=["GET"]),
        r("/whoami", whoami, "GET"),
        r("/experiments", create_experiment, "POST"),
        r("/experiments", list_experiments, "GET"),
        r("/runs", create_run, "POST"),
        r("/runs/get", runs_by_ids, "POST", read=True),
        r("/runs/heartbeat", heartbeat, "POST"),
        r("/runs/mark-lost", mark_lost, "POST"),
        r("/runs/search", search, "POST", read=True),
        r("/runs/filter-notices", filter_notices, "POST", read=True),
        r("/runs/{run_id}", get_run, "GET"),
        r("/runs/{run_id}", update_run, "PATCH"),
        r("/runs/{run_id}", delete_run, "DELETE"),
        r("/runs/{run_id}/log-batch", log_batch, "POST"),
        r("/runs/{run_id}/metrics", metric_history, "GET"),
        r("/runs/{run_id}/tags/delete", delete_tags, "POST"),
        *api_models.routes(settings),
    ]
