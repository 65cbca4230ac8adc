"""MLflow's run endpoints on roost's store: create/get/update/delete/restore, logging, search and metric history.

Every write to a RUNNING run is also its heartbeat (MLflow clients send none), so a run that keeps logging is never
marked LOST; one silent for longer than the heartbeat timeout shows as FAILED until it logs again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from roost.errors import ConflictError
from roost.registry import mlflow_compat as mc
from roost.registry import reads, retention
from roost.registry.run import check_key, check_params, check_step, check_tags
from roost.registry.store import RunDict, utcnow
from roost.server.mlflow import experiments, filters
from roost.server.mlflow.common import (
    Ctx,
    bad,
    from_ms,
    integer,
    listed,
    max_results,
    missing,
    need_text,
    number,
    offset_page,
    text,
    token,
    untoken,
)
from roost.server.mlflow.shapes import RUN_NAME_TAG, USER_TAG, metric_json, run_info, run_json

# MLflow's log-batch limits (its server refuses more in one request)
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100
STATUSES = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"}
_VIEWS = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": ("active", "archived", "deleted"),
}


def lookup(ctx: Ctx, f: dict[str, Any], role: str = "read") -> RunDict:
    """The run named by run_id (or MLflow's older run_uuid) as mlflow_compat.run_head, after checking the caller's
    role on its experiment."""
    run_id = text(f, "run_id", required=False) or need_text(f, "run_uuid")
    run = mc.run_head(ctx.store, run_id)  # one read; the full run only where it is answered (get)
    if run is None:
        raise missing(f"Run with id={run_id} not found")
    ctx.need("experiment", run["experiment"], role)
    return run


def _writable(ctx: Ctx, f: dict[str, Any]) -> RunDict:
    run = lookup(ctx, f, "edit")
    if run["lifecycle_stage"] != "active":
        raise bad(f"The run {run['run_id']} must be in the 'active' state. Current state is {run['lifecycle_stage']}.")
    return run


def _one(ctx: Ctx, run_id: str) -> dict[str, Any]:
    run = ctx.store.runs_by_ids([run_id])[run_id]
    return run_json(run, mc.latest_points(ctx.store, [run_id])[run_id])


def _pairs(items: list[Any], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or "key" not in item:
            raise bad(f"each {what} needs a key and a value")
        out[str(item["key"])] = "" if item.get("value") is None else str(item["value"])
    return out


def create(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/create {experiment_id, run_name, start_time, tags, user_id} → {run}."""
    import uuid

    exp = experiments.lookup(ctx, f.get("experiment_id"), "edit")
    tags = check_tags(_pairs(listed(f, "tags"), "tag"))
    name = text(f, "run_name", required=False) or tags.get(RUN_NAME_TAG)
    user = ctx.user or text(f, "user_id", required=False) or tags.get(USER_TAG)
    if name:
        tags[RUN_NAME_TAG] = name
    if user:
        tags[USER_TAG] = user  # the signed-in account, whatever the client claims
    parent = tags.get("mlflow.parentRunId")
    if parent and parent not in ctx.store.runs_by_ids([parent], reap=False):
        parent = None  # kept as a tag only
    started = integer(f, "start_time")
    run_id, now = uuid.uuid4().hex, utcnow()
    row = {
        "id": run_id,
        "experiment_id": exp["id"],
        "name": name,
        "status": "RUNNING",
        "start_time": from_ms(started) if started is not None else now,
        "end_time": None,
        "heartbeat_at": now,
        "user": user,
        "git_commit": tags.get("mlflow.source.git.commit"),
        "git_dirty": None,
        "source": tags.get("mlflow.source.name"),
        "parent_run_id": parent,
        "artifact_uri": f"{ctx.settings.artifact_root.rstrip('/')}/{exp['id']}/{run_id}/artifacts",
    }
    ctx.store.insert_run(row, {}, tags)
    return {"run": _one(ctx, run_id)}


def get(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET runs/get?run_id= → {run}."""
    return {"run": _one(ctx, lookup(ctx, f)["run_id"])}


def update(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/update {run_id, status, end_time, run_name} → {run_info}."""
    run = lookup(ctx, f, "edit")
    rid = run["run_id"]
    changes: dict[str, Any] = {}
    status = text(f, "status", required=False)
    if status is not None:
        if status not in STATUSES:
            raise bad(f"invalid run status {status!r}: one of {', '.join(sorted(STATUSES))}")
        changes["status"] = "RUNNING" if status == "SCHEDULED" else status
        end = integer(f, "end_time")
        if status in ("RUNNING", "SCHEDULED"):
            changes["end_time"] = None
        else:
            changes["end_time"] = from_ms(end) if end is not None else utcnow()
    name = text(f, "run_name", required=False)
    if name is not None:
        changes["name"] = name
        ctx.store.log_batch(rid, tags={RUN_NAME_TAG: name})
    if changes.get("status") == "RUNNING":
        ctx.store.heartbeat([rid])
    if changes:
        ctx.store.update_run(rid, **changes)
    return {"run_info": run_info(ctx.store.runs_by_ids([rid])[rid])}


def _stage(action: str) -> Any:
    def change(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
        run = lookup(ctx, f, "manage")
        done = {"delete": ("deleted", "purging"), "restore": ("active",)}[action]
        if run["lifecycle_stage"] not in done:  # deleting a deleted run (or restoring an active one) changes nothing
            retention.change_stage(ctx.store, action, run_ids=[run["run_id"]], force=True)
        return {}

    return change


delete, restore = _stage("delete"), _stage("restore")


def _log(ctx: Ctx, run: RunDict, params: Any = None, tags: Any = None, metrics: Any = ()) -> None:
    try:
        ctx.store.log_batch(run["run_id"], params=params, tags=tags, metrics=metrics, heartbeat=True)
    except ConflictError as exc:  # a param logged again with another value
        raise bad(exc.message + " (MLflow params cannot be changed once logged)") from None
    if tags and RUN_NAME_TAG in tags:
        ctx.store.update_run(run["run_id"], name=tags[RUN_NAME_TAG])


def _metric(item: Any) -> tuple[str, float, int, float]:
    if not isinstance(item, dict):
        raise bad("each metric is an object {key, value, timestamp, step}")
    key = check_key("metric", need_text(item, "key"))
    ts = integer(item, "timestamp")
    stamp = ts / 1000 if ts is not None else utcnow().timestamp()
    return key, number(item.get("value"), f"metric {key!r}"), check_step(integer(item, "step", 0)), stamp


def log_metric(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/log-metric {run_id, key, value, timestamp, step}."""
    run = _writable(ctx, f)
    _log(ctx, run, metrics=[_metric(f)])
    return {}


def log_param(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/log-parameter {run_id, key, value}: MLflow params are text and kept as text."""
    run = _writable(ctx, f)
    key = need_text(f, "key")
    _log(ctx, run, params=check_params({key: "" if f.get("value") is None else str(f["value"])}))
    return {}


def set_tag(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/set-tag {run_id, key, value}."""
    run = _writable(ctx, f)
    _log(ctx, run, tags=check_tags({need_text(f, "key"): "" if f.get("value") is None else str(f["value"])}))
    return {}


def delete_tag(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/delete-tag {run_id, key}."""
    run = _writable(ctx, f)
    key = need_text(f, "key")
    if not mc.delete_tag(ctx.store, run["run_id"], key):
        raise missing(f"No tag with name: {key} in run with id {run['run_id']}")
    return {}


def log_batch(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/log-batch {run_id, metrics, params, tags}: one transaction."""
    metrics, params, tags = listed(f, "metrics"), listed(f, "params"), listed(f, "tags")
    for what, items, most in (
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
    ):
        if len(items) > most:
            raise bad(f"A batch logging request can contain at most {most} {what}. Got {len(items)} {what}.")
    run = _writable(ctx, f)
    _log(
        ctx,
        run,
        params=check_params(_pairs(params, "param")) or None,
        tags=check_tags(_pairs(tags, "tag")) or None,
        metrics=[_metric(m) for m in metrics],
    )
    return {}


def accept(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/log-inputs, runs/log-model, runs/outputs: checked (the run, the role) and acknowledged, not stored."""
    _writable(ctx, f)
    return {}


def search(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """runs/search {experiment_ids, filter, run_view_type, max_results, order_by, page_token} → {runs, token}."""
    ids = [str(i) for i in listed(f, "experiment_ids")]
    names = (
        [experiments.lookup(ctx, i)["name"] for i in ids]
        if ids
        else [n for n in reads.experiment_names(ctx.store) if ctx.may("experiment", n)]
    )
    view = text(f, "run_view_type", required=False) or "ACTIVE_ONLY"
    if view not in _VIEWS:
        raise bad(f"invalid run_view_type {view!r}: one of {', '.join(_VIEWS)}")
    n = max_results(f, 1000, 50_000)
    order = filters.order_by([str(t) for t in listed(f, "order_by")])
    state = untoken(text(f, "page_token", required=False))
    offset = integer(state, "offset", 0) or 0
    after = state.get("after")
    keyset = None
    if order is None and isinstance(after, list) and len(after) == 2:
        keyset = (datetime.fromisoformat(str(after[0])), str(after[1]))
    if not names:
        return {}
    found = ctx.store.search_runs(
        filter=filters.run_filter(text(f, "filter", required=False)),
        experiment=names,
        order_by=order,
        limit=n + 1,
        offset=0 if keyset else offset,
        after=keyset,
        stages=_VIEWS[view],
    )
    page = found[:n]
    points = mc.latest_points(ctx.store, [r["run_id"] for r in page])
    out: dict[str, Any] = {"runs": [run_json(r, points[r["run_id"]]) for r in page]}
    if len(found) > n:
        last = page[-1]
        out["next_page_token"] = (
            token({"after": [last["start_time"].isoformat(), last["run_id"]]})
            if order is None
            else token({"offset": offset + n})
        )
    return out


def metric_history(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET metrics/get-history?run_id=&metric_key= → {metrics (every point, by step), next_page_token}."""
    run = lookup(ctx, f)
    key = need_text(f, "metric_key")
    points = ctx.store.metric_history(run["run_id"], key)
    page, nxt = offset_page(points, f, 25_000, 1_000_000)
    out: dict[str, Any] = {"metrics": [metric_json(p) for p in page]}
    if nxt:
        out["next_page_token"] = nxt
    return out
