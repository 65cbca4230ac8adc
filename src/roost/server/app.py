"""The team server's ASGI app: the REST API, the artifact proxy, the MLflow REST subset and the web UI behind one
policy (Host allow-list, same-origin state changes, accounts and roles, every write in the audit log)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from roost.errors import RoostError
from roost.server.settings import ServerSettings

# paths whose state changes carry bodies other than JSON (artifact uploads) or forms (the login page)
UPLOAD_PREFIXES = ("/api/v1/artifacts/", "/api/2.0/mlflow-artifacts/")
TENSORBOARD_PREFIXES = ("/tb/",)  # TensorBoard's own requests carry their own content types (the UI's guard checks)
FORM_PATHS = ("/login", "/logout", "/tensorboard")  # each checks a CSRF token (the UI's: login.ui_csrf)


def create_server_app(settings: ServerSettings | None = None) -> Starlette:
    """Build the server app from `settings` (None: from ROOST_SERVER_SETTINGS, as each uvicorn worker does)."""
    from roost.netpolicy.guard import Guard
    from roost.netpolicy.metrics import metrics_route
    from roost.server import api_v1, audit, auth, login, mlflow_api, proxy, responses, runner, tune_api
    from roost.ui.app import create_app as ui_app
    from roost.ui.security import SecurityHeaders

    settings = settings or ServerSettings.from_env()
    store = settings.store()  # migrate before the first request (the migration lock makes many workers safe)
    from roost.registry import auth_cache

    auth_cache.enable(store.url)  # PostgreSQL: tokens and grants cached in this process, cleared by LISTEN/NOTIFY
    routes: list[BaseRoute] = [
        metrics_route(),
        *auth.routes(settings),
        Mount("/api/v1/artifacts", routes=proxy.routes(settings)),
        Mount("/api/v1/tune", routes=tune_api.tune_routes(settings)),
        Mount("/api/v1", routes=api_v1.routes(settings)),
        *mlflow_api.routes(settings),
        Mount("/", app=ui_app(token=None, allowed_hosts=None, csrf=login.ui_csrf(settings))),
    ]
    middleware = [
        Middleware(audit.AuditMiddleware, settings=settings),
        Middleware(SecurityHeaders),
        Middleware(
            Guard,
            allowed_hosts=settings.allowed_hosts,
            forms=FORM_PATHS,
            any_body=UPLOAD_PREFIXES + TENSORBOARD_PREFIXES,
        ),
        Middleware(auth.AuthMiddleware, settings=settings),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={RoostError: responses.roost_error, Exception: responses.server_error},
    )
    app.state.settings = settings
    app.state.conn_stats = runner.STATS  # what the worker's limited protocol counts (runner.http_protocol)
    return app


def app_from_env() -> Starlette:
    """The app factory `uvicorn --factory` calls in each worker (settings from ROOST_SERVER_SETTINGS)."""
    from roost.server import runner

    settings = ServerSettings.from_env()
    runner.prepare_process(settings)
    return create_server_app(settings)
