"""HTML pages: experiments, runs table, run, compare, models (feature views: roost.ui.features_view)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roost.errors import NotFoundError, RoostError
from roost.ui.compare import MAX_COMPARE
from roost.ui.security import scrub_paths

if TYPE_CHECKING:
    from roost.ui.app import UI

CONFIG_NAMES = (
    "config.yaml",
    "config.resolved.yaml",
    "config.yml",
    "config.json",
    "roost.yaml",
    "train.yaml",
    "params.yaml",
    "config.toml",
)  # roost train writes config.yaml and config.resolved.yaml
CONFIG_MAX_BYTES = 64 * 1024
_PLAIN_KEY = re.compile(r"^[A-Za-z_0-9][\w\-./]*$")


def field_name(scope: str, key: str) -> str:
    """The filter-language name of a param/metric/tag column (backquoted when needed)."""
    return f"{scope}.{key}" if _PLAIN_KEY.match(key) else f"{scope}.`{key}`"


def sort_link(current: str, fld: str, first: str = "ASC") -> tuple[str, str]:
    """(order to apply on click, arrow shown now) for a sortable column header."""
    cur = (current or "").strip()
    if cur == f"{fld} ASC" or cur == fld:
        return f"{fld} DESC", "▲"
    if cur == f"{fld} DESC":
        return f"{fld} ASC", "▼"
    return f"{fld} {first}", ""


def query_builder(request: Request) -> Callable[..., str]:
    """A template helper: the current query string with some params replaced (None drops one)."""
    base = [(k, v) for k, v in request.query_params.multi_items()]

    def qs(**over: Any) -> str:
        keep = [(k, v) for k, v in base if k not in over]
        keep += [(k, v) for k, v in over.items() if v is not None and v != ""]
        return "?" + urlencode(keep)

    return qs


def flag(raw: str | None) -> bool:
    """A query-string switch: 1/true/yes/on (any case) is on; absent or anything else is off."""
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


def _int(request: Request, name: str, default: int) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return default
    return value if abs(value) <= 10**9 else default  # a page past 10**9 overflows SQL's 64-bit OFFSET


def routes(ui: UI) -> list[Route]:
    """The page routes bound to the UI state, one group per page."""
    return [
        *experiments_routes(ui),
        *runs_routes(ui),
        *run_routes(ui),
        *compare_routes(ui),
        *models_routes(ui),
    ]  # /features: roost.ui.features_view


def experiments_routes(ui: UI) -> list[Route]:
    """/ and /experiments: the experiments with their run counts."""
    from roost.ui import data

    async def experiments(request: Request) -> Response:
        return ui.render(request, "experiments.html", experiments=data.experiments_with_counts())

    return [Route("/", experiments), Route("/experiments", experiments)]


def runs_routes(ui: UI) -> list[Route]:
    """/runs: the runs table (filter, experiments, order, page, archived)."""
    from roost.registry import api as reg
    from roost.ui import data

    async def runs(request: Request) -> Response:
        qp = request.query_params
        q = qp.get("q", "")
        exps = [e for e in qp.getlist("experiment") if e]
        order = qp.get("order", "")
        archived = flag(qp.get("archived"))
        try:
            pg = data.runs_page(
                q or None,
                exps or None,
                order or None,
                _int(request, "page", 1),
                _int(request, "per_page", 50),
                nest=not q,  # a filter lists every matching run; otherwise children come under their parents
                archived=archived,
            )
            error, status = None, 200
            notices = reg.filter_notices(q, exps or None) if q else []
        except RoostError as exc:
            pg, error, status, notices = data.RunsPage([], 0, 1, 50), exc, 400, []
        return ui.render(
            request,
            "runs.html",
            status_code=status,
            page=pg,
            q=q,
            experiments=exps,
            order=order,
            archived=archived,
            error=error,
            notices=notices,
            all_experiments=data.experiment_names(),
            qs=query_builder(request),
            sort_link=sort_link,
            field_name=field_name,
            max_compare=MAX_COMPARE,
        )

    return [Route("/runs", runs)]


def run_routes(ui: UI) -> list[Route]:
    """/runs/{run_id}: one run with its files, config, children and lineage."""
    from roost.registry import api as reg

    async def run(request: Request) -> Response:
        from roost import artifacts
        from roost.ui.tensorboard import run_logdir

        try:
            r = reg.get_run(request.path_params["run_id"])
        except NotFoundError as exc:
            return ui.error(request, exc, 404)
        try:
            files = artifacts.list_files(r["artifact_uri"])
            files_error = None
        except Exception as exc:  # noqa: BLE001 - an unreachable artifact store must not break the page
            files, files_error = [], scrub_paths(str(exc))
        from roost.ui.auto_view import auto_candidates

        children = reg.search_runs(f"parent_run_id = '{r['run_id']}'", limit=50)
        return ui.render(
            request,
            "run.html",
            run=r,
            files=files,
            files_error=files_error,
            config=_config(r, files),
            has_tb=run_logdir(r) is not None,
            children=children,
            auto=auto_candidates(r, children),
            lineage=_lineage(r["run_id"]),
        )

    return [Route("/runs/{run_id}", run)]


def compare_routes(ui: UI) -> list[Route]:
    """/compare: runs side by side (params that differ first, metrics, charts, TensorBoard)."""
    from roost.ui import data

    async def compare(request: Request) -> Response:
        from roost.ui.compare import compare_ids, compare_runs
        from roost.ui.tensorboard import MAX_TB_RUNS, runs_with_logs

        try:
            rs = compare_runs(compare_ids(request.query_params.getlist("runs")))
        except NotFoundError as exc:
            return ui.error(request, exc, 404)
        except RoostError as exc:
            return ui.error(request, exc)
        only_diff = request.query_params.get("diff") == "1"
        params = data.diff_rows(rs, "params")
        metrics = data.diff_rows(rs, "metrics")
        if only_diff:
            params = [p for p in params if p["differs"]]
        params.sort(key=lambda p: not p["differs"])  # what tells the runs apart first, then what they share
        return ui.render(
            request,
            "compare.html",
            runs=rs,
            params=params,
            metrics=metrics,
            only_diff=only_diff,
            qs=query_builder(request),
            tb_runs=runs_with_logs(rs, MAX_TB_RUNS),
            chart_runs=[{"id": r["run_id"], "name": r["name"] or r["run_id"][:8]} for r in rs],
        )

    return [Route("/compare", compare)]


def models_routes(ui: UI) -> list[Route]:
    """/models and /models/{name}: the registered models, one model's versions with their lineage."""
    from roost.registry import api as reg
    from roost.ui import data

    async def models(request: Request) -> Response:
        from roost.registry import fleets
        from roost.registry.store import default_store

        live = fleets.live_counts(default_store("the web UI"))
        return ui.render(request, "models.html", models=reg.list_models(), live=live)

    async def model(request: Request) -> Response:
        try:
            view = data.model_view(request.path_params["name"])
        except NotFoundError as exc:
            return ui.error(request, exc, 404)
        from roost.ui import served

        # lineage of the versions an alias points at and the newest ones, 5 at most (each is a few reads)
        chosen = {v["version"] for v in view["versions"] if v["aliases"]}
        chosen = set(sorted(chosen)[-3:])
        for v in reversed(view["versions"]):
            if len(chosen) >= 5:
                break
            chosen.add(v["version"])
        view["lineage"] = {
            v["version"]: _lineage(v["run_id"], v.get("run"))
            for v in view["versions"]
            if v["version"] in chosen and v["run_id"]
        }
        await asyncio.to_thread(_package_pending, view["versions"])
        view["fleets"] = served.served(view["name"])
        view["traffic"] = served.traffic(view["name"], request.query_params.get("window", served.DEFAULT_WINDOW))
        return ui.render(request, "model.html", qs=query_builder(request), **view)

    return [Route("/models", models), Route("/models/{name}", model)]


def _package_pending(versions: list[dict[str, Any]]) -> None:
    """Build the package of each version autolog logged for packaging on first need (a model page is a need: it
    shows what serving would run); a conversion that fails is shown on the version, the native model stays."""
    from roost import artifacts
    from roost.model_import.deferred import build
    from roost.modelpkg.package import pending

    for v in versions:
        source = str(v.get("source") or "")
        if artifacts.is_local(source) and pending(artifacts.local_path(source)):
            try:
                build(artifacts.local_path(source))
            except RoostError as exc:
                v["package_error"] = exc.message


def _lineage(run_id: str, run: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The run's data and feature-view lineage for a page (`run`: its dict, already read), or None when it cannot
    be read."""
    from roost.lineage import run_lineage

    try:
        return run_lineage(run_id, run)
    except Exception:  # noqa: BLE001 - a deleted run or an unreadable artifact must not break the page
        return None


def _config(run: dict[str, Any], files: list[dict[str, Any]], most: int = 2) -> list[dict[str, str]]:
    """The config files logged with a run (known names, shallowest first, at most `most`), as {path, text}."""
    from roost.ui.artifacts_view import read_artifact

    def rank(f: dict[str, Any]) -> tuple[int, int, str]:
        return f["path"].count("/"), CONFIG_NAMES.index(f["path"].rsplit("/", 1)[-1]), f["path"]

    found = []
    for f in sorted((f for f in files if f["path"].rsplit("/", 1)[-1] in CONFIG_NAMES), key=rank):
        if (f["size"] or 0) > CONFIG_MAX_BYTES:
            continue
        try:
            found.append({"path": f["path"], "text": read_artifact(run, f["path"]).decode("utf-8", errors="replace")})
        except (RoostError, OSError):
            continue
        if len(found) == most:
            break
    return found
