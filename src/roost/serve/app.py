"""The serving ASGI app: a small router over the V2 and TF-Serving protocols, admin, metrics and OpenAPI."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import numpy as np
import orjson

from roost.netpolicy import SAFE_METHODS, content_type_reason, cross_site_reason, host_allowed, token_ok
from roost.serve import direct, features, many_http, replies
from roost.serve.batcher import BatcherClosed
from roost.serve.codec import HTTPError, check_inputs, check_method
from roost.serve.loader import LoadedModel
from roost.serve.metrics import Metrics
from roost.serve.protocols import tfserving, v2
from roost.serve.repository import Repository
from roost.serve.reqid import HEADER, Call, checked, new_id
from roost.serve.rollout import pick
from roost.serve.security import ADMIN, OPERATOR, PUBLIC, is_loopback, redact
from roost.serve.shadow import ShadowMirror

if TYPE_CHECKING:
    from roost.serve.lazy import LazyRepository

log = logging.getLogger(__name__)

JSON = b"application/json"
HOSTS_SEEN_MAX = 64  # distinct Host headers whose verdict is remembered (then forgotten all at once)
Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, bytes, bytes, Headers]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[Scope, Receive, dict[bytes, bytes]], Awaitable[Reply]]


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """An admin report entry without filesystem paths (package folders show their last part only)."""
    return {k: redact(v) if isinstance(v, str) else v for k, v in entry.items() if k != "path"}


def _json(obj: Any, status: int = 200) -> Reply:
    """A JSON reply."""
    return status, orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY), JSON, []


class ServeApp:
    """ASGI callable serving the models of a Repository.

    Parameters
    ----------
    repo: the models served (loaded packages, versions, canaries, shadows).
    metrics: Prometheus metrics (None: none kept).
    reqlog: the sampled request log for skew and the console (None: off).
    fetcher: online features joined to requests that name entities (None: requests carry every input).
    max_body: largest request body in bytes (413 above).
    token: the bearer token admin routes (and, unless `public_inference`, inference) require.
    watch_interval: seconds between polls of the registry for moved aliases (`name@alias` models hot-swap).
    on_startup, on_reload: called when the app starts and after a model is reloaded.
    public_inference: with a token, inference and metadata stay open and only admin routes need it.
    allowed_hosts: the Host header allow-list (None: any host; `roost serve` always sets one from `--host`).
    """

    def __init__(
        self,
        repo: Repository,
        metrics: Metrics | None = None,
        reqlog: Any = None,
        fetcher: features.FeatureFetcher | None = None,
        max_body: int = 64 << 20,
        token: str | None = None,
        watch_interval: float = 2.0,
        on_startup: Callable[[], None] | None = None,
        on_reload: Callable[[], None] | None = None,
        public_inference: bool = False,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        self.repo = repo
        self.metrics = metrics
        self.reqlog = reqlog
        self.fetcher = fetcher
        self.max_body = max_body
        self.auth = f"Bearer {token}".encode() if token else None
        self.public_inference = public_inference  # with a token: inference and metadata stay open
        self.allowed_hosts = allowed_hosts  # Host header allow-list (None: any host; the CLI always sets one)
        # verdicts on the Host headers seen, for this allow-list (a client sends the same one on every request)
        self._hosts_seen: tuple[list[str] | None, dict[bytes | None, bool]] = (allowed_hosts, {})
        self.watch_interval = watch_interval
        self.on_startup = on_startup
        self.on_reload = on_reload
        self._mounts: list[tuple[tuple[str, ...], ASGIApp]] = []  # (path prefixes, ASGI app), see mount()
        self._mount_closers: list[Callable[[], None]] = []
        self.ready = True
        self.rollout_seed = 0  # seed of the canary draw (roost serve --rollout-seed)
        self.shadow: ShadowMirror | None = None  # mirrors requests to shadow models (roost serve --shadow)
        self.grace_s = 10.0  # shutdown budget (roost serve --grace): queued shadow mirrors wait this long at most
        self._stop_by: float | None = None  # time.monotonic() by which shutdown work ends (set at the signal)
        # open HTTP connections of this worker (set by the worker from uvicorn's state; None: unknown, e.g. an
        # in-process app) and gRPC calls in progress: with one of them in all, no other request can join a batch
        self.open_connections: Callable[[], int] | None = None
        self.grpc_calls = 0
        self.lazy: LazyRepository | None = None  # a registry selection loaded on demand (roost serve --all)
        self._tasks: list[asyncio.Task[None]] = []
        self._openapi: tuple[int, bytes] | None = None
        self._static: dict[str, tuple[str, Handler]] = {
            "/v2/health/live": ("GET", self._live),
            "/v2/health/ready": ("GET", self._ready),
            "/v2": ("GET", self._server_meta),
            "/metrics": ("GET", self._metrics),
            "/openapi.json": ("GET", self._openapi_doc),
            "/admin/reload": ("POST", self._reload),
            "/admin/status": ("GET", self._status),
            "/v2/repository/index": ("POST", self._repo_index),
        }

    # ---- model access used by the protocol modules -------------------------------------------------------
    def lookup(self, name: str, version: str | None) -> LoadedModel:
        """The model serving `name` (optionally exactly `version`), or a 404 naming what is served."""
        if self.lazy is not None:
            return self.lazy.lookup(name, version)
        model = self.repo.get(name)
        if model is None:
            served = ", ".join(repr(n) for n in self.repo.names)
            raise HTTPError(404, f"model {name!r} is not served here; served models: {served}")
        if version is not None and version != model.version:
            canary = self.repo.canary(name)
            if canary is not None and canary[0].version == version:  # an explicit version always reaches it
                return canary[0]
            raise HTTPError(404, f"model {name!r} version {version!r} is not loaded; version {model.version} is")
        return model

    def choose(self, model: LoadedModel, request_id: str) -> LoadedModel:
        """The model answering an unpinned request: `model` or its canary (seeded draw on the request id)."""
        canary = self.repo.canary(model.name)
        if canary is None:
            return model
        return pick(model, canary[0], canary[1], request_id, self.rollout_seed)

    async def predict(
        self,
        model: LoadedModel,
        arrays: dict[str, np.ndarray],
        protocol: str,
        request_id: str | None = None,
        rows: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Fill online features if needed, validate, run (inline when the batcher is idle, else queued on it) and
        return the outputs; `rows` is given when the decoder already checked a complete input set."""
        t0 = time.perf_counter()
        lineage = None
        if rows is None:
            if features.needs_features(model.package, arrays):
                lineage = await features.fill(model.package, arrays, self.fetcher)
            rows = check_inputs(arrays, model.package)
        batcher = model.batcher
        outputs: dict[str, np.ndarray]
        try:
            if self._inline(model, rows):
                outputs = batcher.run_now(arrays, rows)
            else:
                fut = batcher.submit(arrays, rows)
                outputs = await fut
        except BatcherClosed:
            raise HTTPError(503, f"model {model.name} version {model.version} was just replaced; retry") from None
        except Exception as exc:  # noqa: BLE001 - the graph rejected values that passed the signature checks
            raise HTTPError(400, f"the model could not run on this input: {str(exc)[:300]}") from None
        if self.metrics is not None:
            self.metrics.answered(model.name, model.version)
        if self.shadow is not None and request_id is not None:
            try:
                self.shadow.offer(model, arrays, rows, outputs, time.perf_counter() - t0, request_id)
            except Exception:
                log.warning("shadow: cannot queue a mirror of %s", model.name, exc_info=True)
        if self.reqlog is not None:
            try:
                self.reqlog.maybe_log(model, protocol, arrays, outputs, time.perf_counter() - t0, request_id, lineage)
            except Exception:
                log.warning("request log: cannot queue a request of %s", model.name, exc_info=True)
        return outputs

    def _inline(self, model: LoadedModel, rows: int) -> bool:
        """Whether predict() runs a checked request on this thread (no queue, no thread hand-off): when it would be a
        batch of one anyway — it is alone, or it fills a batch by itself so no other request could be merged with
        it —, or when the model's run costs less than the hand-off would (LoadedModel.cheap). (Sending a full batch
        to the model thread to overlap with decoding was measured: it cost more CPU per 64-row request and lowered
        throughput; see docs/serving.md and bench/RESULTS.md "Figures from code comments".)"""
        batcher = model.batcher
        full = (rows >= batcher.max_rows or model.cheap) and not batcher.closed
        return model.inline_ok and (full or (batcher.idle and self.alone()))

    def runs_alone(self, model: LoadedModel, rows: int) -> bool:
        """Whether predict() would hand a checked request's inputs to nothing but the model's run on this thread: run
        inline, no shadow to mirror them to, no request log to sample them (then a V2 decoder's matrix needs no
        per-input views: ColumnFeed.bare)."""
        return self.shadow is None and self.reqlog is None and self._inline(model, rows)

    def alone(self) -> bool:
        """Whether the request being handled is the only one this worker can have now: one open connection in all
        (HTTP/1.1 serves one request at a time per connection) and no other gRPC call."""
        http = self.open_connections() if self.open_connections is not None else 0
        return http + self.grpc_calls <= 1

    # ---- ASGI --------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        kind = scope["type"]
        if kind == "http":
            if scope["method"] == "POST" and self.direct(scope["path"]):
                await direct.v2_infer(self, scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start the alias watcher on startup; stop batchers and flush the request log on shutdown."""
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                self.start_background()
                if self.on_startup is not None:
                    self.on_startup()
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.ready = False
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def start_background(self) -> None:
        """Start the registry alias watcher (when some model follows an alias); batch this loop's metric updates."""
        if self.metrics is not None:
            self.metrics.batch_on_this_thread()
        self._tasks.append(asyncio.get_running_loop().create_task(self.repo.watch(self.watch_interval)))

    def begin_shutdown(self) -> None:
        """At the shutdown signal: report not ready, take no new shadow mirrors and start the grace's clock."""
        if self._stop_by is None:
            self._stop_by = time.monotonic() + self.grace_s
        self.ready = False
        if self.shadow is not None:
            self.shadow.stop_taking()

    async def aclose(self) -> None:
        """Stop background tasks; let queued shadow mirrors run until the grace ends, then cancel them; stop the
        batchers and wait for their threads (a session is never freed under a run); flush the request logger."""
        self.begin_shutdown()
        stop_by = self._stop_by if self._stop_by is not None else time.monotonic() + self.grace_s
        for t in self._tasks:
            t.cancel()
        if self.shadow is not None:
            await self.shadow.aclose(stop_by, self.repo.cancel_shadows)
        loop = asyncio.get_running_loop()
        # the primaries' queues are empty (requests were drained); a cancelled shadow run stops at its next node
        if not await loop.run_in_executor(None, self.repo.close, max(1.0, stop_by - time.monotonic()) + 2.0):
            log.error("a model thread is still running after the shutdown grace")
        for close in self._mount_closers:
            close()
        if self.metrics is not None:
            self.metrics.flush()
        if self.reqlog is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.reqlog.close)

    async def _read_body(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]) -> bytes:
        """The request body, refused with 413 past max_body (also after decompression)."""
        cl = headers.get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_body:
            raise HTTPError(413, f"request body is {int(cl)} bytes; the limit is {self.max_body} (--max-body-mb)")
        msg = await receive()
        body: bytes = msg.get("body", b"")
        if msg.get("more_body"):
            chunks, size = [body], len(body)
            while msg.get("more_body"):
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    raise HTTPError(400, "client disconnected before sending the whole body")
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > self.max_body:
                    raise HTTPError(413, f"request body exceeds the limit of {self.max_body} bytes (--max-body-mb)")
                chunks.append(chunk)
            body = b"".join(chunks)
        enc = headers.get(b"content-encoding")
        if enc and enc not in (b"identity",):
            body = self._decompress(body, enc)
        return body

    def _decompress(self, body: bytes, enc: bytes) -> bytes:
        """Undo gzip/deflate request compression, bounded by max_body."""
        kind = enc.strip().lower()
        wbits = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}.get(kind)
        if wbits is None:
            raise HTTPError(415, f"unsupported Content-Encoding {enc.decode(errors='replace')!r}; use gzip or deflate")
        name = kind.decode()
        out, rest = bytearray(), body
        while True:  # a gzip body may be several members one after another (RFC 1952), as `cat a.gz b.gz` makes
            d = zlib.decompressobj(wbits)
            try:
                out += d.decompress(rest, self.max_body + 1 - len(out))
            except zlib.error as exc:
                raise HTTPError(400, f"body is not valid {name} data: {exc}") from None
            if len(out) > self.max_body:
                raise HTTPError(413, f"decompressed body exceeds the limit of {self.max_body} bytes")
            if not d.eof:
                raise HTTPError(400, f"the {name} body is truncated (its compressed stream does not end)")
            rest = d.unused_data
            if not rest:
                return bytes(out)
            if kind != b"gzip":
                raise HTTPError(400, f"{len(rest)} bytes follow the end of the {name} stream")

    def mount(self, prefixes: tuple[str, ...], app: ASGIApp, close: Callable[[], None] | None = None) -> None:
        """Hand requests under `prefixes` to another ASGI app (e.g. the vector-index routes)."""
        self._mounts.append((prefixes, app))
        if close is not None:
            self._mount_closers.append(close)

    def _check_host(self, headers: dict[bytes, bytes]) -> None:
        """Refuse (400) a Host header outside the allow-list: a DNS-rebinding page must not reach the server."""
        allowed = self.allowed_hosts
        if allowed is None:
            return
        host = headers.get(b"host")
        cache = self._hosts_seen
        if cache[0] is not allowed or len(cache[1]) >= HOSTS_SEEN_MAX:  # a new list, or many distinct headers
            cache = self._hosts_seen = (allowed, {})
        ok = cache[1].get(host)
        if ok is None:
            ok = cache[1][host] = host_allowed(host, allowed)
        if not ok:
            raise HTTPError(400, "invalid Host header; this server answers only its allowed host names (--allow-host)")

    def _gate(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        """Refuse a request whose Host is not allowed (400), a cross-site POST (403), one that lacks the token (401)
        or is not local (403), and an admin POST of a type any web page may send (415) — docs/security.md."""
        self._check_host(headers)
        path: str = scope["path"]
        unsafe = scope["method"] not in SAFE_METHODS
        if unsafe:  # three dict lookups for a script's request: no measurable cost on inference
            why = cross_site_reason(headers)
            if why is not None:
                raise HTTPError(403, f"cross-site request refused: {why}")
        if path in PUBLIC:
            return
        admin = path.startswith(ADMIN)
        if self.auth is None:
            if admin and not is_loopback(scope.get("client")):
                raise HTTPError(403, "admin endpoints answer only local clients unless the server has a --token")
        elif (admin or path in OPERATOR or not self.public_inference) and not token_ok(
            headers.get(b"authorization"), self.auth
        ):
            raise HTTPError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
        if admin and unsafe:  # inference is no state change: TF-Serving and KServe clients send any type
            why = content_type_reason(headers, takes_json=False)
            if why is not None:
                raise HTTPError(415, f"{why}; send no body, or JSON with Content-Type: application/json")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one HTTP request; every failure becomes a JSON error reply, never a dead worker."""
        t0 = time.perf_counter()
        path: str = scope["path"]
        call = Call()
        extra: Headers = []
        metrics = self.metrics if path != "/metrics" else None  # a scrape does not count itself
        if metrics is not None:
            metrics.enter()
        try:
            headers = dict(scope["headers"])
            for prefixes, sub in self._mounts:
                if path.startswith(prefixes):  # the mounted app checks its own token
                    self._check_host(headers)
                    await sub(scope, receive, send)
                    return
            sent = headers.get(HEADER)
            call.request_id = new_id() if sent is None else checked(sent, "X-Request-Id")
            self._gate(scope, headers)
            status, body, ctype, extra = await self._route(scope, receive, headers, call)
        except Exception as exc:  # noqa: BLE001 - every failure is answered (failed: 4xx as raised, else 500)
            status, body, ctype, extra = replies.failed(scope, exc)
        finally:
            if metrics is not None:
                metrics.leave()
        await replies.answer(send, status, body, ctype, call.request_id, extra)
        if self.metrics is not None:
            self.metrics.observe(call.model, call.protocol, status, time.perf_counter() - t0)

    def direct(self, path: str) -> bool:
        """Whether a POST to `path` takes the direct V2 infer route (roost.serve.direct): /v2/models/.../infer of a
        fixed model set (not --all) that no mounted app claims."""
        return (
            path.startswith("/v2/models/")
            and path.endswith("/infer")
            and self.lazy is None
            and not any(path.startswith(prefixes) for prefixes, _ in self._mounts)
        )

    async def _route(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes], call: Call) -> Reply:
        """Dispatch on the path; `call` gets the model and protocol for metrics, and the request id."""
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v2/models/"):
            name, version, action = v2.route(self, method, path[11:])
            if self.lazy is not None:
                return await many_http.v2_model(self, name, version, action, scope, receive, headers, call)
            if action == "infer":
                if self.repo.get(name) is not None:
                    call.model = name
                call.protocol = "v2"
                body = await self._read_body(scope, receive, headers)
                return await v2.infer(self, name, version, body, headers, call)
            model = self.lookup(name, version)
            if action == "ready":
                return _json({"name": name, "ready": True})
            return _json(v2.model_metadata(model))
        if path.startswith("/v1/models/"):
            name, version, lbl, action = tfserving.route(method, path[11:])
            if self.lazy is not None:
                return await many_http.tf_model(self, name, version, lbl, action, scope, receive, headers, call)
            if action == "predict":
                if self.repo.get(name) is not None:
                    call.model = name
                call.protocol = "tfserving"
                body = await self._read_body(scope, receive, headers)
                return await tfserving.predict(self, name, version, lbl, body, call.request_id)
            model = self.lookup(name, version)
            return _json(tfserving.metadata(model) if action == "metadata" else tfserving.status(model))
        entry = self._static.get(path.rstrip("/") or "/")
        if entry is None:
            raise HTTPError(404, f"no route {path}; see GET /openapi.json for the API")
        want, handler = entry
        check_method(method, want, f"on {path}")
        return await handler(scope, receive, headers)

    # ---- fixed endpoints --------------------------------------------------------------------------------
    async def _live(self, *_: Any) -> Reply:
        """GET /v2/health/live."""
        return _json({"live": True})

    async def _ready(self, *_: Any) -> Reply:
        """GET /v2/health/ready: 200 while every model is loaded and the worker is not draining."""
        ok = self.ready and all(s.current.batcher.alive for s in self.repo.slots.values())
        return _json({"ready": ok}, 200 if ok else 503)

    async def _server_meta(self, *_: Any) -> Reply:
        """GET /v2: server metadata."""
        from roost import __version__

        return _json({"name": "roost", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def _metrics(self, *_: Any) -> Reply:
        """GET /metrics: Prometheus text format."""
        if self.metrics is None:
            raise HTTPError(404, "metrics are disabled")
        if self.metrics.flush_s > 0:  # every worker writes its batched updates within flush_s: wait for them
            self.metrics.flush()
            await asyncio.sleep(self.metrics.flush_s + 0.01)
        body, ctype = self.metrics.exposition()
        return 200, body, ctype.encode(), []

    async def _openapi_doc(self, *_: Any) -> Reply:
        """GET /openapi.json: the OpenAPI 3 document of this server and its models."""
        if self._openapi is None or self._openapi[0] != self.repo.generation:
            from roost.serve.openapi import build

            self._openapi = (self.repo.generation, orjson.dumps(build(self.repo)))
        return 200, self._openapi[1], JSON, []

    async def _reload(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]) -> Reply:
        """POST /admin/reload[?model=NAME&force=1]: re-resolve and hot-swap; the fleet's other workers follow."""
        await self._read_body(scope, receive, headers)
        qs = parse_qs(scope.get("query_string", b"").decode(errors="replace"), keep_blank_values=True)
        names = qs.get("model") or None
        for n in names or []:
            self.lookup(n, None)
        flag = (qs.get("force") or ["0"])[-1].lower()
        if flag not in ("0", "1", "true", "false"):
            raise HTTPError(400, f"force must be 0 or 1, got {flag[:20]!r}")
        force = flag in ("1", "true")
        result = await self.repo.reload(names, force=force)
        if self.on_reload is not None:
            self.on_reload()
        return _json({"pid": os.getpid(), "models": [_public(r) for r in result]})

    async def _repo_index(self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]) -> Reply:
        """POST /v2/repository/index: the models and their state (many_http.index)."""
        return await many_http.index(self, scope, receive, headers)

    async def _status(self, *_: Any) -> Reply:
        """GET /admin/status: this worker's pid, loaded models and whether torch was ever imported."""
        if self.lazy is not None:
            return _json({"pid": os.getpid(), "models": self.lazy.describe(), "torch_imported": "torch" in sys.modules})
        models = [_public({**s.current.describe(), "last_error": s.last_error}) for s in self.repo.slots.values()]
        return _json({"pid": os.getpid(), "models": models, "torch_imported": "torch" in sys.modules})
