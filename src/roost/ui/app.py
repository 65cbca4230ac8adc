"""The UI's ASGI app: routes, templates, middleware and the TensorBoard manager's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from roost.errors import RoostError
from roost.netpolicy import LOOPBACK_NAMES, Guard, TokenAuth
from roost.ui.security import COOKIE, SecurityHeaders, new_csrf_token, scrub_paths
from roost.ui.tensorboard import DEFAULT_IDLE_S, DEFAULT_MAX_BOARDS, TensorBoardManager

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOOPBACK_HOSTS = list(LOOPBACK_NAMES)
_TOKEN_OK = re.compile(r"^[A-Za-z0-9._~\-]{8,256}$")


def fmt_value(v: Any) -> str:
    """A param/metric value for a table cell: floats shortened, None blank."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}" if abs(v) >= 1e4 else str(int(v))  # counts: 18,830 rather than 1.883e+04
        if abs(v) >= 1e5:
            return f"{v:,.0f}"
        return f"{v:.6g}" if abs(v) >= 1e-4 else f"{v:.4e}"
    return str(v)


def fmt_time(v: Any) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS' UTC."""
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return "" if v is None else str(v)


def fmt_size(n: float | None) -> str:
    """Bytes, human-sized."""
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def duration(run: dict[str, Any]) -> str:
    """A run's wall time (or empty while it runs)."""
    if not run.get("end_time") or not run.get("start_time"):
        return ""
    s = (run["end_time"] - run["start_time"]).total_seconds()
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def make_env() -> Environment:
    """The Jinja environment: autoescaping on for every template, UI filters registered."""
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=fmt_value, time=fmt_time, size=fmt_size, duration=duration)
    env.globals["urlencode"] = lambda pairs: urlencode(pairs, doseq=True)
    env.globals["monitoring_section"] = _monitoring_section
    return env


def _monitoring_section(name: str) -> Any:
    """The model page's monitoring data (roost.ui.monitoring.section), for templates/_monitoring.html."""
    from roost.ui.monitoring import section

    return section(name)


class UI:
    """Per-app state: the template environment, the TensorBoard manager, the CSRF token and options."""

    def __init__(self, tb: TensorBoardManager, token: str | None, csrf: str | None = None) -> None:
        self.env = make_env()
        self.tb = tb
        self.token = token
        self.csrf = csrf or new_csrf_token()

    def render(self, request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        """Render a template into an HTML response."""
        from roost.ui import data

        try:
            has_features = bool(data.feature_views())
        except Exception:  # noqa: BLE001 - the nav must render even if the store cannot answer
            has_features = False
        html = self.env.get_template(template).render(
            request=request, path=request.url.path, has_features=has_features, csrf_token=self.csrf, **ctx
        )
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, exc: RoostError, status_code: int = 400) -> HTMLResponse:
        """An error page that shows a RoostError's message and hint (filesystem paths cut to their last part)."""
        return self.render(
            request,
            "error.html",
            status_code=status_code,
            message=scrub_paths(exc.message),
            hint=scrub_paths(exc.hint) if exc.hint else exc.hint,
        )


def create_app(
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
    tb_idle_s: float = DEFAULT_IDLE_S,
    tb_command: list[str] | None = None,
    tb_log_dir: Path | None = None,
    tb_max: int = DEFAULT_MAX_BOARDS,
    csrf: str | None = None,
) -> Starlette:
    """Build the UI app (token: required bearer token; allowed_hosts: Host header allow-list, None: no Host check
    (`roost ui` always passes one); tb_max: the most TensorBoards running at once; csrf: its forms' CSRF token,
    None: a random one (one process); the team server passes one that all its workers share)."""
    from roost.netpolicy.limits import ConnStats
    from roost.netpolicy.metrics import metrics_route
    from roost.ui import api, artifacts_view, features_view, lineage_view, monitoring, pages, shadow_view, tbroutes

    if token is not None and not _TOKEN_OK.match(token):
        raise RoostError(
            "the UI token must be 8-256 characters of letters, digits, '.', '_', '~' or '-'",
            hint="e.g. roost ui --token $(python -c 'import secrets; print(secrets.token_urlsafe())')",
        )
    tb = TensorBoardManager(idle_s=tb_idle_s, log_dir=tb_log_dir, command=tb_command, max_boards=tb_max)
    ui = UI(tb, token, csrf)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import httpx

        app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        reaper = asyncio.create_task(_reap(ui.tb))
        try:
            yield
        finally:
            reaper.cancel()
            await app.state.http.aclose()
            ui.tb.stop_all()

    routes = [
        *pages.routes(ui),
        *shadow_view.routes(ui),
        *lineage_view.routes(ui),
        *monitoring.routes(ui),
        *features_view.routes(ui),
        *artifacts_view.routes(ui),
        *api.routes(ui),
        *tbroutes.routes(ui),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        metrics_route(),
    ]
    # docs/security.md: Host allow-list, same-origin state changes, JSON (or the forms' CSRF token) on state
    # changes; TensorBoard's own requests under /tb/ carry their own content types
    guard = Middleware(
        Guard, allowed_hosts=allowed_hosts, forms=("/tensorboard", "/api/tensorboard"), any_body=("/tb/",)
    )
    auth = Middleware(TokenAuth, token=token, cookie=COOKIE, who="roost ui")
    middleware = [Middleware(SecurityHeaders), guard, auth]

    async def server_error(request: Request, exc: Exception) -> Response:
        """A 500 that tells nothing about the server (the traceback goes to the log)."""
        log.error("UI error on %s %s", request.method, request.url.path, exc_info=exc)
        return PlainTextResponse("roost ui: internal error (see the server log)", status_code=500)

    app = Starlette(
        routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={Exception: server_error}
    )
    app.state.ui = ui
    app.state.conn_stats = ConnStats()  # counted by the connection protocol, read by GET /metrics
    return app


def serve(app: Starlette, host: str, port: int, log_level: str = "warning") -> None:
    """Serve the UI until SIGTERM or Ctrl-C, then return normally (a clean stop is exit 0, not 143 or 130).

    uvicorn drains on either signal and then raises the signal again with the handler that was in place before it
    started; a no-op handler here makes that a plain return (TensorBoards are stopped by the app's lifespan).
    """
    import signal

    import uvicorn

    from roost.netpolicy.limits import ConnLimits, uvicorn_options

    stops = (signal.SIGTERM, signal.SIGINT)
    old = {sig: signal.signal(sig, lambda signum, frame: None) for sig in stops}
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            **uvicorn_options(ConnLimits.from_env(), "roost ui", app.state.conn_stats),
        )
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


async def _reap(tb: TensorBoardManager) -> None:
    """Every 30 s, stop TensorBoards that nobody used for tb.idle_s."""
    while True:
        await asyncio.sleep(min(30.0, max(1.0, tb.idle_s / 2)))
        tb.reap_idle()
