"""MLflow's experiment endpoints on roost's experiments (int ids, shown as strings; "0" is roost's "default")."""

from __future__ import annotations

import re
from typing import Any

from roost.errors import ConflictError
from roost.registry import mlflow_compat as mc
from roost.server.mlflow.common import Ctx, MlflowError, bad, missing, need_text, offset_page, text
from roost.server.mlflow.shapes import experiment_json

DEFAULT_EXPERIMENT = "default"  # MLflow's experiment "0": where runs go when no experiment is set
NAME_MAX = 256


def lookup(ctx: Ctx, raw_id: Any, role: str = "read") -> dict[str, Any]:
    """The experiment with MLflow id `raw_id`, after checking the caller's `role` on it."""
    raw = str(raw_id if raw_id not in (None, "") else "0").strip()
    if raw == "0":
        eid = ctx.store.get_or_create_experiment(DEFAULT_EXPERIMENT)
    elif raw.isascii() and raw.isdigit() and len(raw) < 12:
        eid = int(raw)
    else:
        raise bad(f"experiment id {raw[:40]!r} is not a number (roost's experiment ids are 1, 2, …)")
    found = mc.experiment(ctx.store, id=eid)
    if found is None:
        raise missing(f"No Experiment with id={raw} exists")
    ctx.need("experiment", found["name"], role)
    return found


def create(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """POST experiments/create {name} → {experiment_id}."""
    name = need_text(f, "name").strip()
    if len(name) > NAME_MAX or "\x00" in name:
        raise bad(f"experiment name {name[:60]!r}… must be at most {NAME_MAX} characters, without NUL")
    try:
        eid = mc.create_experiment(ctx.store, name)
    except ConflictError:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.") from None
    ctx.created("experiment", name)
    return {"experiment_id": str(eid)}


def get(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET experiments/get?experiment_id= → {experiment}."""
    return {"experiment": experiment_json(lookup(ctx, need_text(f, "experiment_id")))}


def get_by_name(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET experiments/get-by-name?experiment_name= → {experiment}."""
    name = need_text(f, "experiment_name")
    found = mc.experiment(ctx.store, name=name)
    if found is None:  # as MLflow's auth app: mlflow.set_experiment creates it on this answer, with any role
        raise missing(f"Could not find experiment with name '{name}'")
    ctx.need("experiment", name, "read")
    return {"experiment": experiment_json(found)}


_NAME_FILTER = re.compile(
    r"""\s*(?:attributes\.|attribute\.)?name\s*(=|!=|LIKE|ILIKE)\s*(?:'((?:[^']|'')*)'|"([^"]*)")\s*""", re.I
)


def like(pattern: str, case: bool = True) -> re.Pattern[str]:
    """A SQL LIKE pattern (% and _) as a regular expression."""
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, 0 if case else re.I | re.S)


def name_matcher(src: str | None, what: str) -> Any:
    """A predicate on names from a filter such as "name LIKE 'churn%'" (the subset roost answers)."""
    if src is None or not src.strip():
        return lambda _: True
    m = _NAME_FILTER.fullmatch(src)
    if m is None:
        raise bad(f"unsupported {what} filter {src!r}: roost filters {what}s by name only (name = / != / LIKE 'x')")
    op, value = m.group(1).upper(), m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3)
    if op == "=":
        return lambda n: n == value
    if op == "!=":
        return lambda n: n != value
    rx = like(value, case=op == "LIKE")
    return lambda n: rx.fullmatch(n) is not None


def search(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """experiments/search {filter, max_results, order_by, page_token} → {experiments, next_page_token}."""
    keep = name_matcher(text(f, "filter", required=False), "experiment")
    found = [
        e
        for e in ctx.store.list_experiments()
        if keep(e["name"]) and ctx.may("experiment", e["name"]) and f.get("view_type", "ACTIVE_ONLY") != "DELETED_ONLY"
    ]
    order = f.get("order_by") or []
    terms = [order] if isinstance(order, str) else list(order)
    found.sort(key=lambda e: e["id"])
    for term in reversed(terms or ["creation_time DESC"]):  # MLflow's default: newest first
        parts = str(term).split()
        field = parts[0].split(".")[-1] if parts else ""
        desc = len(parts) > 1 and parts[1].upper() == "DESC"
        keys = {"name": "name", "experiment_id": "id", "creation_time": "id", "last_update_time": "id"}
        if field not in keys:
            raise bad(f"invalid order_by clause {term!r}: order experiments by name, experiment_id or creation_time")
        column = keys[field]
        found.sort(key=lambda e: e[column], reverse=desc)
    page, nxt = offset_page(found, f, 1000, 50_000)
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if nxt:
        out["next_page_token"] = nxt
    return out


def unsupported(what: str) -> Any:
    """A handler answering NOT_IMPLEMENTED for an experiment change roost does not make."""

    def refuse(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
        raise MlflowError(
            "NOT_IMPLEMENTED",
            f"roost does not {what}: experiments keep their name and are never deleted "
            "(delete or archive their runs instead: roost runs delete --experiment NAME)",
        )

    return refuse
