"""MLflow's model registry endpoints on roost's registered models, versions and aliases (registry.modelreg).

A version's source must be a run's artifact (runs:/RUN/path or mlflow-artifacts:/EXP/RUN/artifacts/path): roost
stores the run's real artifact location, so `roost models` and `roost serve` load it too. Stages are not roost's
(aliases are): transition-stage is acknowledged and every version stays in stage "None".
"""

from __future__ import annotations

import re
from typing import Any

from roost.artifacts import safe_join
from roost.errors import ConflictError, NotFoundError
from roost.registry import mlflow_compat as mc
from roost.registry import modelreg
from roost.registry.modelreg import ModelVersionInfo
from roost.registry.store import RunDict
from roost.server.mlflow import logged
from roost.server.mlflow.common import Ctx, MlflowError, bad, integer, missing, need_text, offset_page, text
from roost.server.mlflow.experiments import name_matcher
from roost.server.mlflow.shapes import mlflow_source, model_json, version_json

_RUNS_URI = re.compile(r"runs:/([0-9a-fA-F]+)(?:/(.*))?")
_LOGGED_URI = re.compile(r"models:/(m-[0-9a-fA-F]+)/?")
_PROXY_URI = re.compile(r"mlflow-artifacts:(?://[^/]*)?/(\d+)/([0-9a-fA-F]+)/artifacts(?:/(.*))?")


def _model(ctx: Ctx, name: str, role: str = "read") -> dict[str, Any]:
    ctx.need("model", name, role)  # by name first: a 403 tells nothing about whether it exists
    found = mc.registered_model(ctx.store, name)
    if found is None:
        raise missing(f"Registered Model with name={name} not found")
    return found


def _version(ctx: Ctx, f: dict[str, Any], role: str = "read") -> ModelVersionInfo:
    name = need_text(f, "name")
    _model(ctx, name, role)
    raw = need_text(f, "version")
    try:
        return modelreg.get_version(ctx.store, name, modelreg.version_number(raw))
    except NotFoundError:
        raise missing(f"Model Version (name={name}, version={raw}) not found") from None


def _runs(ctx: Ctx, vs: list[ModelVersionInfo]) -> dict[str, RunDict]:
    return ctx.store.runs_by_ids([v.run_id for v in vs if v.run_id], reap=False)


def _versions_json(ctx: Ctx, vs: list[ModelVersionInfo]) -> list[dict[str, Any]]:
    runs = _runs(ctx, vs)
    return [version_json(v, runs.get(v.run_id or "")) for v in vs]


def _model_json(ctx: Ctx, m: dict[str, Any]) -> dict[str, Any]:
    latest = mc.versions(ctx.store, names=[m["name"]])[-1:]
    return model_json(m, _versions_json(ctx, latest))


# -- registered models ---------------------------------------------------------------------------------------------
def create_model(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """registered-models/create {name, description} → {registered_model}."""
    name = need_text(f, "name")
    try:
        mc.create_registered_model(ctx.store, name, text(f, "description", required=False))
    except ConflictError:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.") from None
    ctx.created("model", name)
    return {"registered_model": _model_json(ctx, _model(ctx, name))}


def get_model(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET registered-models/get?name= → {registered_model}."""
    return {"registered_model": _model_json(ctx, _model(ctx, need_text(f, "name")))}


def update_model(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """registered-models/update {name, description}."""
    name = need_text(f, "name")
    _model(ctx, name, "edit")
    mc.set_description(ctx.store, name, text(f, "description", required=False))
    return {"registered_model": _model_json(ctx, _model(ctx, name))}


def delete_model(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """registered-models/delete {name}: the model, its versions and aliases (runs and artifacts stay)."""
    name = need_text(f, "name")
    _model(ctx, name, "manage")
    mc.delete_registered_model(ctx.store, name)
    return {}


def search_models(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """registered-models/search {filter: name = / LIKE, max_results, page_token} → {registered_models}."""
    keep = name_matcher(text(f, "filter", required=False), "registered model")
    names = [n for n in mc.model_names(ctx.store) if keep(n) and ctx.may("model", n)]
    page, nxt = offset_page(names, f, 100, 1000)
    out: dict[str, Any] = {"registered_models": []}
    for n in page:
        found = mc.registered_model(ctx.store, n)
        if found is not None:
            out["registered_models"].append(_model_json(ctx, found))
    if nxt:
        out["next_page_token"] = nxt
    return out


def latest_versions(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """registered-models/get-latest-versions {name}: the latest version (every version is in stage "None")."""
    name = need_text(f, "name")
    _model(ctx, name)
    stages = f.get("stages") or []
    wanted = [stages] if isinstance(stages, str) else list(stages)
    vs = mc.versions(ctx.store, names=[name])[-1:]
    if wanted and "None" not in wanted:
        vs = []
    return {"model_versions": _versions_json(ctx, vs)}


# -- versions ------------------------------------------------------------------------------------------------------
def _source(ctx: Ctx, source: str, run_id: str | None) -> tuple[str, str]:
    """(the run's real artifact location of `source`, the run id): sources are a run's artifacts only."""
    logged_model = _LOGGED_URI.fullmatch(source)
    if logged_model is not None:  # MLflow 3: models:/m-ID, a logged model, kept in its run's artifacts
        where, rid = logged.location(ctx, logged_model.group(1))
        if run_id and run_id != rid:
            raise bad(f"logged model {logged_model.group(1)} was logged by run {rid}, not by run_id {run_id}")
        return where, rid
    m = _RUNS_URI.fullmatch(source) or _PROXY_URI.fullmatch(source)
    if m is None:
        raise bad(
            f"model version source {source[:80]!r} is not a run's artifact: register runs:/RUN_ID/PATH or the "
            "mlflow-artifacts:/ URI of a run's artifact, or a logged model (models:/m-…)"
        )
    groups = m.groups()
    rid, rel = (groups[0], groups[1]) if len(groups) == 2 else (groups[1], groups[2])
    if run_id and run_id != rid:
        raise bad(f"source {source[:80]!r} is an artifact of run {rid}, not of run_id {run_id}")
    run = ctx.store.runs_by_ids([rid], reap=False).get(rid)
    if run is None or (len(groups) == 3 and str(run["experiment_id"]) != groups[0]):
        raise missing(f"Run with id={rid} not found")
    ctx.need("experiment", run["experiment"], "read")
    return safe_join(run["artifact_uri"], rel), rid


def create_version(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """model-versions/create {name, source, run_id} → {model_version} (status READY at once)."""
    name = need_text(f, "name")
    _model(ctx, name, "edit")
    location, rid = _source(ctx, need_text(f, "source"), text(f, "run_id", required=False))
    info = modelreg.register(ctx.store, name, location, rid)
    return {"model_version": _versions_json(ctx, [info])[0]}


def get_version(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET model-versions/get?name=&version= → {model_version}."""
    return {"model_version": _versions_json(ctx, [_version(ctx, f)])[0]}


def download_uri(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET model-versions/get-download-uri → {artifact_uri} (through the artifact proxy)."""
    v = _version(ctx, f)
    return {"artifact_uri": mlflow_source(v, _runs(ctx, [v]).get(v.run_id or ""))}


def transition_stage(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """model-versions/transition-stage: acknowledged, the version unchanged (roost has aliases, not stages)."""
    return {"model_version": _versions_json(ctx, [_version(ctx, f, "edit")])[0]}


def update_version(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """model-versions/update: roost keeps no version descriptions; the version is returned unchanged."""
    return {"model_version": _versions_json(ctx, [_version(ctx, f, "edit")])[0]}


def delete_version(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """model-versions/delete {name, version}: the version and the aliases pointing at it."""
    v = _version(ctx, f, "manage")
    mc.delete_version(ctx.store, v.name, v.version)
    return {}


_CLAUSE = re.compile(
    r"""\s*(name|run_id)\s*(=|IN|LIKE|ILIKE)\s*(\((?:[^()]*)\)|'(?:[^']|'')*'|"[^"]*")\s*""", re.I | re.S
)
_QUOTED = re.compile(r"""'((?:[^']|'')*)'|"([^"]*)\"""")


def search_versions(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """model-versions/search {filter: name = 'x' / run_id = 'y' / run_id IN (…) AND …} → {model_versions}."""
    src = text(f, "filter", required=False) or ""
    names: list[str] | None = None
    run_ids: list[str] | None = None
    name_like: list[Any] = []
    for clause in re.split(r"\s+and\s+", src, flags=re.I) if src.strip() else []:
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            raise bad(f"unsupported model version filter {src!r}: use name = 'x', run_id = 'y' or run_id IN ('a', 'b')")
        field, op = m.group(1).lower(), m.group(2).upper()
        values = [a.replace("''", "'") if a else b for a, b in _QUOTED.findall(m.group(3))]
        if op in ("LIKE", "ILIKE"):
            name_like.append(name_matcher(f"name {op} '{values[0]}'", "model version") if values else None)
        elif field == "name":
            names = values
        else:
            run_ids = values
    found = [
        v
        for v in mc.versions(ctx.store, names=names, run_ids=run_ids)
        if all(p is not None and p(v.name) for p in name_like) and ctx.may("model", v.name)
    ]
    found.sort(key=lambda v: (v.name, -v.version))
    page, nxt = offset_page(found, f, 10_000, 200_000)
    out: dict[str, Any] = {"model_versions": _versions_json(ctx, page)}
    if nxt:
        out["next_page_token"] = nxt
    return out


# -- aliases -------------------------------------------------------------------------------------------------------
def set_alias(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """POST registered-models/alias {name, alias, version}: a new alias needs edit, moving one manage."""
    name, alias = need_text(f, "name"), need_text(f, "alias")
    _model(ctx, name, "manage" if modelreg.has_alias(ctx.store, name, alias) else "edit")
    version = integer(f, "version")
    if version is None:
        raise bad("Missing value for required parameter 'version'")
    modelreg.set_alias(ctx.store, name, version, alias, user=ctx.user)
    return {}


def delete_alias(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """DELETE registered-models/alias {name, alias}."""
    name, alias = need_text(f, "name"), need_text(f, "alias")
    _model(ctx, name, "manage")
    modelreg.delete_alias(ctx.store, name, alias, user=ctx.user)
    return {}


def get_by_alias(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET registered-models/alias?name=&alias= → {model_version}."""
    name, alias = need_text(f, "name"), need_text(f, "alias")
    m = _model(ctx, name)
    if alias not in m["aliases"]:
        raise missing(f"Registered model alias {alias} not found.")
    v = modelreg.get_version(ctx.store, name, m["aliases"][alias])
    return {"model_version": _versions_json(ctx, [v])[0]}
