"""MLflow 3's logged models (what `mlflow.<flavor>.log_model` creates), kept the roost way: inside their run.

A logged model's files go to its run's artifacts under the model's name (`runs:/RUN/NAME`, as MLflow 2 did), so
roost's own tools see them as run artifacts; its record (id, name, status, params, tags) is a stored object of kind
"mlflow.logged_model". A logged model needs a run (roost keeps models in runs): one without source_run_id is refused.
Permissions are its run's experiment's: read to see, edit to log.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from roost import artifacts
from roost.server.mlflow.common import Ctx, bad, listed, missing, need_text, offset_page, text
from roost.server.mlflow.runs import lookup as run_lookup
from roost.server.mlflow.shapes import artifact_uri

KIND = "mlflow.logged_model"
_STATUSES = {"LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"}
_EQUALS = re.compile(r"""\s*(name|source_run_id|model_id)\s*=\s*(?:'((?:[^']|'')*)'|"([^"]*)")\s*""", re.I)


def model_json(spec: dict[str, Any]) -> dict[str, Any]:
    """A LoggedModel."""
    return {
        "info": {
            "model_id": spec["model_id"],
            "experiment_id": str(spec["experiment_id"]),
            "name": spec["name"],
            "creation_timestamp_ms": spec["created_ms"],
            "last_updated_timestamp_ms": spec["updated_ms"],
            "artifact_uri": artifact_uri(spec["experiment_id"], spec["source_run_id"]) + "/" + spec["path"],
            "status": spec["status"],
            "model_type": spec.get("model_type") or "",
            "source_run_id": spec["source_run_id"],
            "tags": [{"key": k, "value": v} for k, v in sorted(spec["tags"].items())],
        },
        "data": {"params": [{"key": k, "value": v} for k, v in sorted(spec["params"].items())], "metrics": []},
    }


def _pairs(items: list[Any]) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value") or "") for i in items if isinstance(i, dict) and "key" in i}


def _spec(ctx: Ctx, f: dict[str, Any], role: str) -> dict[str, Any]:
    model_id = need_text(f, "model_id")
    spec = ctx.store.get_object(KIND, model_id)
    if spec is None:
        raise missing(f"Logged model with ID '{model_id}' not found.")
    run_lookup(ctx, {"run_id": spec["source_run_id"]}, role)
    return spec


def location(ctx: Ctx, model_id: str) -> tuple[str, str]:
    """(the real artifact location, the run id) of logged model `model_id` (read on its run's experiment)."""
    spec = _spec(ctx, {"model_id": model_id}, "read")
    run = run_lookup(ctx, {"run_id": spec["source_run_id"]}, "read")
    return artifacts.safe_join(run["artifact_uri"], spec["path"]), run["run_id"]


def _free_path(root: str, name: str, model_id: str) -> str:
    """The model's folder in its run: its name, or name-ID when a folder of that name is there already."""
    with artifacts.remote(root if "://" in root else "file://" + root) as (fs, path):
        return f"{name}-{model_id[2:10]}" if fs.exists(path.rstrip("/") + "/" + name) else name


def create(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models {experiment_id, name, source_run_id, model_type, params, tags} → {model}."""
    rid = text(f, "source_run_id", required=False)
    if rid is None:
        raise bad("roost keeps models in runs: log the model inside a run (mlflow.start_run()), or log its folder")
    run = run_lookup(ctx, {"run_id": rid}, "edit")
    if str(f.get("experiment_id") or run["experiment_id"]) != str(run["experiment_id"]):
        raise bad(f"run {rid} is in experiment {run['experiment_id']}, not {f.get('experiment_id')}")
    name = text(f, "name", required=False) or "model"
    artifacts.safe_join(run["artifact_uri"], name)  # a name that is not a plain relative path is refused
    model_id = "m-" + uuid.uuid4().hex
    now = int(time.time() * 1000)
    spec = {
        "model_id": model_id,
        "experiment_id": run["experiment_id"],
        "name": name,
        "source_run_id": rid,
        "path": _free_path(run["artifact_uri"], name, model_id),
        "model_type": text(f, "model_type", required=False),
        "status": "LOGGED_MODEL_PENDING",
        "created_ms": now,
        "updated_ms": now,
        "params": _pairs(listed(f, "params")),
        "tags": _pairs(listed(f, "tags")),
    }
    ctx.store.put_object(KIND, model_id, spec)
    return {"model": model_json(spec)}


def _change(ctx: Ctx, f: dict[str, Any], apply: Any) -> dict[str, Any]:
    spec = _spec(ctx, f, "edit")

    def change(cur: dict[str, Any] | None) -> dict[str, Any]:
        if cur is None:
            raise missing(f"Logged model with ID '{spec['model_id']}' not found.")
        apply(cur)
        cur["updated_ms"] = int(time.time() * 1000)
        return cur

    return {"model": model_json(ctx.store.update_object(KIND, spec["model_id"], change))}


def get(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET logged-models/{model_id} → {model}."""
    return {"model": model_json(_spec(ctx, f, "read"))}


def finalize(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """PATCH logged-models/{model_id} {status} → {model}."""
    status = need_text(f, "status")
    if status not in _STATUSES:
        raise bad(f"invalid logged model status {status!r}: one of {', '.join(sorted(_STATUSES))}")
    return _change(ctx, f, lambda cur: cur.update(status=status))


def set_tags(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """PATCH logged-models/{model_id}/tags {tags}."""
    tags = _pairs(listed(f, "tags"))
    _change(ctx, f, lambda cur: cur["tags"].update(tags))
    return {}


def delete_tag(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """DELETE logged-models/{model_id}/tags/{tag_key}."""
    key = need_text(f, "tag_key")
    _change(ctx, f, lambda cur: cur["tags"].pop(key, None))
    return {}


def log_params(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models/{model_id}/params {params}."""
    params = _pairs(listed(f, "params"))
    _change(ctx, f, lambda cur: cur["params"].update(params))
    return {}


def delete(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """DELETE logged-models/{model_id}: the record (its files stay in the run's artifacts); deleting needs manage."""
    spec = _spec(ctx, f, "manage")
    ctx.store.delete_object(KIND, spec["model_id"])
    return {}


def search(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """POST logged-models/search {experiment_ids, filter: name = / source_run_id = … AND …} → {models}."""
    from roost.server.mlflow import experiments

    wanted = {str(experiments.lookup(ctx, i)["id"]) for i in listed(f, "experiment_ids")} or {
        str(e["id"]) for e in ctx.store.list_experiments() if ctx.may("experiment", e["name"])
    }
    src = text(f, "filter", required=False) or ""
    equal: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", src, flags=re.I) if src.strip() else []:
        m = _EQUALS.fullmatch(clause)
        if m is None:
            raise bad(f"unsupported logged model filter {src!r}: use name = 'x', source_run_id = 'y' joined by AND")
        equal[m.group(1).lower()] = m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3)
    found = [
        s
        for s in ctx.store.list_objects(KIND).values()
        if str(s["experiment_id"]) in wanted and all(str(s.get(k)) == v for k, v in equal.items())
    ]
    found.sort(key=lambda s: -int(s["created_ms"]))
    page, nxt = offset_page(found, f, 100, 1000)
    out: dict[str, Any] = {"models": [model_json(s) for s in page]}
    if nxt:
        out["next_page_token"] = nxt
    return out
