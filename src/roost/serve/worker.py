"""A serving worker: loads the models, then serves the socket its supervising parent shares (uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from roost.serve.app import ServeApp
from roost.serve.config import CONFIG_ENV, ServeConfig
from roost.serve.loader import parse_spec
from roost.serve.metrics import Metrics
from roost.serve.repository import Repository

log = logging.getLogger(__name__)

FD_ENV = "ROOST_SERVE_FD"
STATUS_FD_ENV = "ROOST_SERVE_STATUS_FD"
EXIT_LOAD_FAILED = 3
SWITCH_INTERVAL_S = 0.0002
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc mallopt parameters (malloc.h)


def build_app(
    cfg: ServeConfig,
    metrics: Metrics | None = None,
    fetcher: Any = None,
    on_startup: Callable[[], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> ServeApp:
    """Load every model of `cfg` and wrap them in the ASGI app (blocking)."""
    from roost.serve.features import default_fetcher

    repo: Repository
    if cfg.many:  # a registry selection, loaded on demand (roost.serve.lazy)
        from roost.serve.catalog import Selection
        from roost.serve.lazy import LazyRepository

        repo = LazyRepository(
            Selection(tuple(cfg.select), tuple(cfg.aliases)),
            cfg.worker_budget(),
            threads=cfg.intra_op_threads,
            max_batch=cfg.max_batch,
            metrics=metrics,
        )
    else:
        repo = Repository(
            [parse_spec(m) for m in cfg.models], threads=cfg.intra_op_threads, max_batch=cfg.max_batch, metrics=metrics
        )
    if cfg.canary:
        from roost.serve.rollout import parse_canary

        for item in cfg.canary:
            c = parse_canary(item)
            repo.add_canary(c.spec, c.percent)
    if cfg.shadow:
        from roost.serve.rollout import parse_shadow

        for item in cfg.shadow:
            c = parse_shadow(item)
            repo.add_shadow(c.spec, c.percent)
    repo.load_all()
    reqlog = None
    log_dir = cfg.request_log_dir()
    if log_dir is not None:
        from roost.serve.reqlog import RequestLogger

        reqlog = RequestLogger(log_dir, cfg.log_requests, metrics=metrics)
    if fetcher is None and any(s.current.package.feature_refs for s in repo.slots.values()):
        fetcher = default_fetcher(with_times=reqlog is not None)
    app = ServeApp(
        repo,
        metrics=metrics,
        reqlog=reqlog,
        fetcher=fetcher,
        max_body=cfg.max_body,
        token=cfg.token,
        public_inference=cfg.public_inference,
        allowed_hosts=cfg.host_allow_list(),
        watch_interval=cfg.poll_s,
        on_startup=on_startup,
        on_reload=on_reload,
    )
    if cfg.many:
        from roost.serve.lazy import LazyRepository

        app.lazy = repo if isinstance(repo, LazyRepository) else None
    app.rollout_seed = cfg.rollout_seed
    app.grace_s = cfg.grace_s
    if cfg.shadow:
        from roost.serve.rollout import ShadowLog
        from roost.serve.shadow import ShadowMirror

        app.shadow = ShadowMirror(repo.shadow, ShadowLog(cfg.shadow_log_dir()), metrics, seed=cfg.rollout_seed)
    if cfg.indexes:  # vector indexes next to the models: /v1/indexes/..., /v1/recommend/...
        from roost.ann import http as ann_http
        from roost.ann.serving import open_indexes

        ann = open_indexes(
            cfg.indexes,
            recommend={k: (str(v[0]), v[1] if len(v) > 1 else None) for k, v in cfg.recommend.items()},
            poll_s=cfg.poll_s,
        )
        app.mount(
            ("/v1/indexes", "/v1/recommend"),
            ann_http.app(ann, token=cfg.token, max_body=cfg.max_body, allowed_hosts=None),  # Host: checked by serve
            ann.close,
        )
    return app


def create_app(models: list[str], **settings: Any) -> ServeApp:
    """An in-process ASGI app serving `models` (for embedding and tests; `roost serve` runs a fleet)."""
    cfg = ServeConfig(models=list(models), **settings)
    cfg.check()
    return build_app(cfg, Metrics())


def with_grpc(app: ServeApp, cfg: ServeConfig) -> Callable[[Any, Any, Any], Awaitable[None]]:
    """`app` that also serves KServe V2 gRPC on cfg.grpc_port (the front $ROOST_SERVE_GRPC_FRONT names: uvicorn's
    HTTP/2 on this event loop, roost.serve.grpc.asgi, or grpcio's thread pool): started before the worker reports
    ready, stopped (draining for grace_s) before the batchers close."""
    from roost.errors import RoostError
    from roost.serve.grpc import start_server

    server: list[Any] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)

        async def recv() -> Any:
            msg = await receive()
            if msg["type"] == "lifespan.startup" and cfg.grpc_port is not None:
                try:
                    server.append(await start_server(app, cfg.host, cfg.grpc_port, cfg.max_body, cfg.limits()))
                except RoostError as exc:
                    log.error("cannot start: %s (%s)", exc, exc.hint)
                    os._exit(EXIT_LOAD_FAILED)  # before serving anything: nothing to drain or flush
            elif msg["type"] == "lifespan.shutdown" and server:
                await server.pop().stop(cfg.grace_s)
            return msg

        await app(scope, recv, send)

    return asgi


def _libc() -> Any:
    """glibc through ctypes, or None (another C library, or not Linux)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when its parent dies, so no orphan keeps the port."""
    libc = _libc()
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _keep_freed_heap() -> None:
    """Let glibc keep freed heap memory for the next request: by default it returns the top of the heap to the OS
    once 128 kB are free, so each request's ~100 kB of buffers (a 64-row JSON body, its floats) were trimmed and
    faulted back in (~11 page faults a request, ~4 % of a worker's CPU). Keeps at most 64 MB; bodies over 4 MB
    still get their own mappings. A MALLOC_* variable set by the user wins."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or any(k.startswith("MALLOC_") for k in os.environ):
        return
    for param, value in ((M_TRIM_THRESHOLD, 64 << 20), (M_TOP_PAD, 16 << 20), (M_MMAP_THRESHOLD, 4 << 20)):
        libc.mallopt(param, value)


def main() -> None:
    """Worker entry point (`python -m roost.serve.worker`, started by the fleet supervisor)."""
    import uvicorn

    from roost.errors import RoostError
    from roost.netpolicy.limits import uvicorn_options
    from roost.serve.metrics import ConnMetrics

    _die_with_parent()
    _keep_freed_heap()
    # the model thread needs the GIL back after each run; the default 5 ms switch interval would make it wait
    # that long whenever the event loop is busy parsing other requests
    sys.setswitchinterval(float(os.environ.get("ROOST_SERVE_SWITCH_INTERVAL", SWITCH_INTERVAL_S)))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the event loop handles it
    # a stop that comes while the models still load (the supervisor drains a fleet whose slow workers are not
    # ready yet) is a clean exit too: SystemExit runs the exit hooks, the default action would not. Once serving,
    # uvicorn handles both signals, drains, then re-raises them into these handlers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s worker[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    cfg = ServeConfig.from_json(os.environ[CONFIG_ENV])
    sock = socket.socket(fileno=int(os.environ[FD_ENV]))
    status_fd = int(os.environ.get(STATUS_FD_ENV, "-1"))
    parent = os.getppid()
    holder: dict[str, ServeApp] = {}

    def on_startup() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(holder["app"].repo.reload()))
        if status_fd >= 0:
            os.write(status_fd, f"ready {os.getpid()}\n".encode())

    def on_reload() -> None:
        if status_fd >= 0:
            os.kill(parent, signal.SIGUSR1)  # the supervisor tells every worker to reload

    metrics = Metrics()
    try:
        holder["app"] = build_app(cfg, metrics, on_startup=on_startup, on_reload=on_reload)
    except RoostError as exc:
        log.error("cannot start: %s", exc)
        sys.exit(EXIT_LOAD_FAILED)
    config = uvicorn.Config(
        holder["app"] if cfg.grpc_port is None else with_grpc(holder["app"], cfg),
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(cfg.grace_s),
        server_header=False,
        backlog=2048,
        **uvicorn_options(cfg.limits(), "roost serve", ConnMetrics(metrics)),
    )
    app = holder["app"]

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.begin_shutdown()  # the grace starts now: shadow mirrors stop being taken while requests drain
            super().handle_exit(sig, frame)

    server = _Server(config)
    app.open_connections = lambda: len(server.server_state.connections)  # see ServeApp.alone
    try:
        server.run(sockets=[sock])
    finally:
        if not app.repo.close(timeout=2.0):  # (after a normal shutdown the threads have ended already)
            # a model thread still inside one onnxruntime run: exiting normally would destroy its session (and
            # onnxruntime's threads) under it, which aborts the process ("terminate called without an active
            # exception"); leave without running destructors instead
            leaving = sys.exc_info()[1]
            code = 0 if leaving is None or (isinstance(leaving, SystemExit) and leaving.code in (0, None)) else 1
            log.error("a model run outlived the shutdown grace; exiting without waiting for it")
            logging.shutdown()
            os._exit(code)


if __name__ == "__main__":
    main()
