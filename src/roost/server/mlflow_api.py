"""The MLflow REST API of the team server (the package roost.server.mlflow): `MLFLOW_TRACKING_URI=http://server`
works with the stock mlflow client for tracking, the model registry and artifacts, under roost's permissions."""

from __future__ import annotations

from starlette.routing import BaseRoute

from roost.server.settings import ServerSettings


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """The MLflow routes; each carries its own prefix (/api/2.0/mlflow…, /ajax-api/2.0/mlflow…)."""
    from roost.server.mlflow.routes import routes as mlflow_routes

    return mlflow_routes(settings)
