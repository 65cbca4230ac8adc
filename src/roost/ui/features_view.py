"""/features and /features/{name}: feature views with fields, TTL, source, transformation, materialisation,
online rows and freshness, a sample of online rows and the skew of the models that read them.

Everything comes from the feature repository (one read per kind) and the facts materialisation records with the
watermark (online rows, newest event time): a page view never scans the offline files nor counts the online store;
the sample is one bounded read (SAMPLE_ROWS) of the online store.
"""

from __future__ import annotations

import ast
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import NotFoundError

if TYPE_CHECKING:
    from roost.ui.app import UI

log = logging.getLogger(__name__)

SAMPLE_ROWS = 10
CODE_MAX_BYTES = 256 * 1024


def _time(iso: Any) -> datetime | None:
    """An ISO time from the repository as an aware datetime (None when absent or unreadable)."""
    if not iso:
        return None
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def age_text(seconds: float | None) -> str:
    """A duration for people: '42 s', '12 min', '3.5 h', '2.0 days'."""
    if seconds is None:
        return ""
    s = abs(seconds)
    text = (
        f"{s:.0f} s"
        if s < 120
        else (f"{s / 60:.0f} min" if s < 7200 else (f"{s / 3600:.1f} h" if s < 172800 else f"{s / 86400:.1f} days"))
    )
    return text if seconds >= 0 else f"in {text}"


def ttl_text(seconds: Any) -> str:
    """A TTL for people ('none' when the values never expire)."""
    if seconds is None:
        return "none (never expires)"
    return age_text(float(seconds)) + f" ({float(seconds):g} s)"


def _facts(name: str, spec: dict[str, Any], wm: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The view's summary: fields, entities, TTL, source, materialisation, online rows, freshness."""
    wm = wm or {}
    newest = _time(wm.get("newest_event"))

    def mapping(v: Any) -> dict[str, Any]:
        return dict(v) if isinstance(v, dict) else {}  # a hand-written spec of another shape: shown empty

    ents = spec.get("entities")
    return {
        "name": name,
        "entities": [str(e) for e in ents] if isinstance(ents, list) else [],
        "join_keys": mapping(spec.get("join_keys")),
        "fields": mapping(spec.get("fields")),
        "ttl_seconds": spec.get("ttl_seconds"),
        "ttl": ttl_text(spec.get("ttl_seconds")),
        "source": spec.get("source"),
        "description": spec.get("description") or "",
        "materialized_at": _time(wm.get("updated_at")),
        "watermark": _time(wm.get("watermark")),
        "online_store": wm.get("online_store"),
        "online_rows": wm.get("online_rows"),
        "last_rows": wm.get("rows"),
        "newest_event": newest,
        "freshness_s": None if newest is None else (now - newest).total_seconds(),
        "freshness": "" if newest is None else age_text((now - newest).total_seconds()),
    }


def views_overview() -> list[dict[str, Any]]:
    """Every registered view's summary, by name (three repository reads, whatever the store size)."""
    from roost.features import repo

    specs, marks = repo.list_all("view"), repo.list_all("watermark")
    now = datetime.now(UTC)
    return [_facts(n, specs[n], marks.get(n), now) for n in sorted(specs)]


def transform_code(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The view's transformation: SQL expressions, or a Python function's source (read from its file)."""
    tr = spec.get("transform")
    if not tr:
        return None
    if tr.get("kind") == "sql":
        exprs = tr.get("exprs") or {}
        return {"kind": "sql", "code": "\n".join(f"{k} = {v}" for k, v in exprs.items())}
    where = tr.get("file") or tr.get("module") or ""
    out = {"kind": "python", "function": tr.get("function"), "where": where, "hash": tr.get("hash"), "code": None}
    path = Path(str(tr.get("file"))) if tr.get("file") else None
    if path is not None and path.is_file() and path.stat().st_size <= CODE_MAX_BYTES:
        try:
            text = path.read_text(encoding="utf-8")
            for node in ast.parse(text).body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == tr.get("function"):
                    out["code"] = ast.get_source_segment(text, node)
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            log.debug("transformation source of %s not read: %s", where, exc)
    return out


def online_sample(name: str, wm: dict[str, Any] | None, n: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first `n` online rows of a view (event time as a UTC time), [] when never materialised."""
    if not wm or not wm.get("online_store"):
        return []
    from roost.features.online_stores import open_online_store

    store = open_online_store(str(wm["online_store"]))
    if not store.has_view(name):
        return []
    rows = store.sample(name, n)
    for r in rows:
        et = r.pop("__et", None)
        r["event time (UTC)"] = None if et is None else datetime.fromtimestamp(et / 1e6, UTC)
    return rows


def view_detail(name: str) -> dict[str, Any]:
    """Everything the view's page shows; NotFoundError when no such view is registered."""
    from roost.features import repo
    from roost.ui.monitoring import view_skew

    spec = repo.get("view", name)
    if spec is None:
        from roost.errors import closest

        near = closest(name, list(repo.list_all("view")))
        raise NotFoundError(f"feature view {name!r} is not registered", hint=f"did you mean {near!r}?" if near else "")
    wm = repo.get("watermark", name)
    facts = _facts(name, spec, wm, datetime.now(UTC))
    src = repo.get("source", str(spec.get("source"))) or {}
    try:
        sample, sample_error = online_sample(name, wm), None
    except Exception as exc:  # noqa: BLE001 - an unreachable online store must not break the page
        sample, sample_error = [], str(exc)
    return {
        **facts,
        "source_spec": src,
        "transform": transform_code(spec),
        "sample": sample,
        "sample_columns": list(sample[0]) if sample else [],
        "sample_error": sample_error,
        "skew": view_skew(name),
    }


def routes(ui: UI) -> list[Route]:
    """The /features routes."""

    async def features(request: Request) -> Response:
        return ui.render(request, "features.html", views=await run_in_threadpool(views_overview))

    async def feature_view(request: Request) -> Response:
        try:
            v = await run_in_threadpool(view_detail, request.path_params["name"])
        except NotFoundError as exc:
            return ui.error(request, exc, 404)
        return ui.render(request, "feature_view.html", v=v)

    return [Route("/features", features), Route("/features/{name}", feature_view)]
