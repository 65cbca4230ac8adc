"""The JSON API under /api/ that the pages use (errors: 400/404 with {"error", "hint"})."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError

if TYPE_CHECKING:
    from roost.ui.app import UI

Handler = Callable[[Request], Awaitable[Any]]


def json_default(o: Any) -> Any:
    """JSON for datetimes, paths and other stragglers."""
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def clean(o: Any) -> Any:
    """Replace non-finite floats (not valid JSON) with None, recursively."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [clean(v) for v in o]
    return o


def dumps(o: Any) -> str:
    """Serialize API payloads."""
    return json.dumps(clean(o), default=json_default, allow_nan=False)


def json_response(payload: Any, status_code: int = 200) -> Response:
    """A JSON response (datetimes as ISO strings, non-finite floats as null)."""
    return Response(dumps(payload), status_code=status_code, media_type="application/json")


def error_response(exc: RoostError, status_code: int) -> Response:
    """A JSON error {"error", "hint"} with filesystem paths cut to their last part."""
    from roost.ui.security import scrub_paths

    return json_response(
        {"error": scrub_paths(exc.message), "hint": scrub_paths(exc.hint) if exc.hint else exc.hint}, status_code
    )


def endpoint(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler returning a payload: RoostError → 400 (404 for not found) with message and hint."""

    async def wrapped(request: Request) -> Response:
        try:
            out = await fn(request)
        except RoostError as exc:
            return error_response(exc, 404 if isinstance(exc, NotFoundError) else 400)
        return out if isinstance(out, Response) else json_response(out)

    return wrapped


MAX_PAGE = 10**9  # the highest page number: (page - 1) x per_page must stay a 64-bit SQL OFFSET


def _int(request: Request, name: str, default: int, most: int | None = None) -> int:
    """An integer query parameter: ASCII digits with an optional '-' (int() also reads '1_0', '+1', ' 1' and other
    scripts' digits), at most `most`."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()):
        raise RoostError(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if most is not None and value > most:
        raise RoostError(f"{name} must be at most {most:,}, got {raw[:40]}", hint=f"e.g. ?{name}=2")
    return value


def routes(ui: UI) -> list[Route]:
    """The /api routes bound to the UI state."""
    from roost import artifacts
    from roost.registry import api as reg
    from roost.ui import compare as cmp
    from roost.ui import data

    async def experiments(request: Request) -> Any:
        return reg.list_experiments()

    async def runs(request: Request) -> Any:
        from roost.ui.pages import flag

        qp = request.query_params
        exps = [e for e in qp.getlist("experiment") if e] or None
        pg = data.runs_page(
            qp.get("q") or qp.get("filter") or None,
            exps,
            qp.get("order") or None,
            _int(request, "page", 1, MAX_PAGE),
            _int(request, "per_page", 50),
            archived=flag(qp.get("archived")),
        )
        return {
            "total": pg.total,
            "total_exact": pg.total_exact,  # False: at least `total` runs match (counts stop at 10,000)
            "has_next": pg.has_next,
            "page": pg.page,
            "per_page": pg.per_page,
            "pages": pg.pages,
            "param_keys": pg.param_keys,
            "metric_keys": pg.metric_keys,
            "runs": pg.runs,
        }

    async def run(request: Request) -> Any:
        return reg.get_run(request.path_params["run_id"])

    async def metrics(request: Request) -> Any:
        r = reg.get_run(request.path_params["run_id"])
        series = data.metric_series(r["run_id"], max(2, min(_int(request, "max_points", 2000), 100_000)))
        key = request.query_params.get("key")
        if key is not None:
            if key not in series:
                raise NotFoundError(
                    f"run {r['run_id'][:8]} has no metric {key!r}", hint="metrics: " + (", ".join(series) or "none")
                )
            series = {key: series[key]}
        return {"run_id": r["run_id"], "name": r["name"], "metrics": series}

    async def charts(request: Request) -> Any:
        from roost.ui.charts import runs_charts

        rs = cmp.compare_runs(cmp.compare_ids(request.query_params.getlist("runs"), least=1))
        asked = max(2, min(_int(request, "max_points", 2000), 100_000))
        return runs_charts(rs, cmp.curve_points(len(rs), asked))

    async def run_artifacts(request: Request) -> Any:
        r = reg.get_run(request.path_params["run_id"])
        return {
            "run_id": r["run_id"],
            "artifact_uri": r["artifact_uri"],
            "files": artifacts.list_files(r["artifact_uri"]),
        }

    async def compare(request: Request) -> Any:
        rs = cmp.compare_runs(cmp.compare_ids(request.query_params.getlist("runs")))
        return {"runs": rs, "params": data.diff_rows(rs, "params"), "metrics": data.diff_rows(rs, "metrics")}

    async def models(request: Request) -> Any:
        return reg.list_models()

    async def model(request: Request) -> Any:
        view = data.model_view(request.path_params["name"])
        for v in view["versions"]:
            v["run"] = None if v["run"] is None else {k: v["run"][k] for k in ("run_id", "name", "experiment")}
        return view

    async def feature_views(request: Request) -> Any:
        return data.feature_views()

    return [
        Route("/api/experiments", endpoint(experiments)),
        Route("/api/runs", endpoint(runs)),
        Route("/api/runs/{run_id}", endpoint(run)),
        Route("/api/runs/{run_id}/metrics", endpoint(metrics)),
        Route("/api/runs/{run_id}/artifacts", endpoint(run_artifacts)),
        Route("/api/compare", endpoint(compare)),
        Route("/api/charts", endpoint(charts)),
        Route("/api/models", endpoint(models)),
        Route("/api/models/{name}", endpoint(model)),
        Route("/api/feature-views", endpoint(feature_views)),
    ]
