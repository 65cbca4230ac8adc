"""The MLflow endpoints roost answers, under /api/2.0/mlflow/ and /ajax-api/2.0/mlflow/, and the artifact proxy."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from roost.server.mlflow import artifacts, experiments, logged, models, runs
from roost.server.mlflow.common import Handler, endpoint, error_response
from roost.server.settings import ServerSettings

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

# (path under the prefix, methods, handler)
TABLE: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/experiments/create", ("POST",), experiments.create),
    ("/experiments/get", ("GET",), experiments.get),
    ("/experiments/get-by-name", ("GET",), experiments.get_by_name),
    ("/experiments/search", ("GET", "POST"), experiments.search),
    ("/experiments/update", ("POST",), experiments.unsupported("rename experiments")),
    ("/experiments/delete", ("POST",), experiments.unsupported("delete experiments")),
    ("/experiments/restore", ("POST",), experiments.unsupported("delete or restore experiments")),
    ("/experiments/set-experiment-tag", ("POST",), experiments.unsupported("keep experiment tags")),
    ("/runs/create", ("POST",), runs.create),
    ("/runs/get", ("GET",), runs.get),
    ("/runs/update", ("POST",), runs.update),
    ("/runs/delete", ("POST",), runs.delete),
    ("/runs/restore", ("POST",), runs.restore),
    ("/runs/log-metric", ("POST",), runs.log_metric),
    ("/runs/log-parameter", ("POST",), runs.log_param),
    ("/runs/set-tag", ("POST",), runs.set_tag),
    ("/runs/delete-tag", ("POST",), runs.delete_tag),
    ("/runs/log-batch", ("POST",), runs.log_batch),
    ("/runs/log-inputs", ("POST",), runs.accept),
    ("/runs/log-model", ("POST",), runs.accept),
    ("/runs/outputs", ("POST",), runs.accept),
    ("/runs/search", ("POST",), runs.search),
    ("/metrics/get-history", ("GET",), runs.metric_history),
    ("/logged-models", ("POST",), logged.create),
    ("/logged-models/search", ("POST",), logged.search),
    ("/logged-models/{model_id}", ("GET",), logged.get),
    ("/logged-models/{model_id}", ("PATCH",), logged.finalize),
    ("/logged-models/{model_id}", ("DELETE",), logged.delete),
    ("/logged-models/{model_id}/tags", ("PATCH",), logged.set_tags),
    ("/logged-models/{model_id}/tags/{tag_key}", ("DELETE",), logged.delete_tag),
    ("/logged-models/{model_id}/params", ("POST",), logged.log_params),
    ("/artifacts/list", ("GET",), artifacts.list_run),
    ("/registered-models/create", ("POST",), models.create_model),
    ("/registered-models/get", ("GET",), models.get_model),
    ("/registered-models/update", ("PATCH",), models.update_model),
    ("/registered-models/delete", ("DELETE",), models.delete_model),
    ("/registered-models/search", ("GET",), models.search_models),
    ("/registered-models/get-latest-versions", ("GET", "POST"), models.latest_versions),
    ("/registered-models/alias", ("POST",), models.set_alias),
    ("/registered-models/alias", ("DELETE",), models.delete_alias),
    ("/registered-models/alias", ("GET",), models.get_by_alias),
    ("/model-versions/create", ("POST",), models.create_version),
    ("/model-versions/get", ("GET",), models.get_version),
    ("/model-versions/get-download-uri", ("GET",), models.download_uri),
    ("/model-versions/search", ("GET",), models.search_versions),
    ("/model-versions/transition-stage", ("POST",), models.transition_stage),
    ("/model-versions/update", ("PATCH",), models.update_version),
    ("/model-versions/delete", ("DELETE",), models.delete_version),
]


async def _unknown(request: Request) -> Response:
    return error_response(
        "ENDPOINT_NOT_FOUND",
        f"roost does not answer MLflow's {request.method} {request.url.path} (see docs/server.md, MLflow clients)",
    )


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """The MLflow routes, each carrying its full path (/api/2.0/mlflow/…, /ajax-api/2.0/mlflow/…)."""
    store = settings.store()
    by_path: dict[str, dict[str, Handler]] = {}
    for path, methods, fn in TABLE:
        for m in methods:
            by_path.setdefault(path, {})[m] = fn
    out: list[BaseRoute] = []
    for prefix in PREFIXES:
        for path, handlers in by_path.items():
            out.append(Route(prefix + path, _dispatch(settings, store, handlers), methods=list(handlers)))
    out += [
        Route(ARTIFACTS, endpoint(settings, store, artifacts.list_proxy), methods=["GET"]),
        Route(ARTIFACTS + "/{path:path}", artifacts.streaming(settings, store, artifacts.download), methods=["GET"]),
        Route(ARTIFACTS + "/{path:path}", artifacts.streaming(settings, store, artifacts.upload), methods=["PUT"]),
        Route(ARTIFACTS + "/{path:path}", artifacts.streaming(settings, store, artifacts.delete), methods=["DELETE"]),
    ]
    for prefix in (*PREFIXES, "/api/2.0/mlflow-artifacts", "/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        out.append(Route(prefix + "/{rest:path}", _unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]))
    return out


def _dispatch(settings: ServerSettings, store: Any, handlers: dict[str, Handler]) -> Any:
    """One endpoint for a path whose methods call different handlers (registered-models/alias)."""
    by_method = {m: endpoint(settings, store, fn) for m, fn in handlers.items()}

    async def run(request: Request) -> Response:
        return await by_method[request.method](request)

    return run
