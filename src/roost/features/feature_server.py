"""The online feature server (`roost features serve`): Feast's feature-server JSON over roost's online reads and pushes.

POST /get-online-features  {"features": ["view:field", ...], "entities": {"key": [ids]}, "full_feature_names": false}
  -> {"metadata": {"feature_names": [keys..., features...]},
      "results": [{"values": [...], "statuses": [...], "event_timestamps": [...]}, ...]}  (one result per name)
POST /push (and /features/push)  {"push_source_name" or "view": NAME, "df": {column: [values]},
  "to": "online" | "offline" | "online_and_offline"}  (default online_and_offline: training reads the offline log)
GET /health, GET /metrics (Prometheus text).

Reads go through `serving.OnlineFetcher`, pushes through `push.Pusher`: the same code as `roost.features.online`
and `roost.features.push`. Bad requests get 4xx JSON {"error", "hint"} naming the field; unknown views or features
404. The server follows roost's network policy (docs/security.md) through `netpolicy.Guard`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from roost.errors import NotFoundError, RoostError
from roost.netpolicy import LOOPBACK_NAMES, Guard, allowed_hosts

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)

MAX_BODY = 16 << 20  # bytes of one request body
MAX_ENTITY_ROWS = 10_000  # entity rows of one get-online-features request
CACHE = 256  # prepared fetchers/pushers kept (least recently used go)
REFRESH_S = 10.0  # a prepared fetcher/pusher is rebuilt after this long (definitions may have been re-applied)
EPOCH = "1970-01-01T00:00:00Z"  # Feast's event timestamp of a value that is not there
_TOP_GET = {"features", "feature_service", "entities", "full_feature_names"}
_TOP_PUSH = {"push_source_name", "view", "df", "to", "allow_registry_cache", "transform_on_write"}


__all__ = ["FeatureServer", "create_app", "serve", "MAX_BODY", "MAX_ENTITY_ROWS"]


class HTTPError(Exception):
    """A refusal: status, message (names the field) and hint."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


def _iso(us: int | None) -> str:
    """UTC microseconds as ISO 8601 with Z (Feast's epoch for a missing value)."""
    if us is None:
        return EPOCH
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _json_values(raw: list[Any], dtype: str) -> list[Any]:
    """Stored values as JSON values of the field's type (timestamps as ISO text, NaN as null)."""
    if dtype == "bool":
        return [None if v is None else bool(v) for v in raw]
    if dtype == "timestamp":
        return [None if v is None else _iso(int(v)) for v in raw]
    if dtype in ("float64", "float32"):
        return [None if v is None or v != v else float(v) for v in raw]
    return raw


class _Cache:
    """Prepared objects by key, least recently used dropped past CACHE, rebuilt after REFRESH_S."""

    def __init__(self) -> None:
        self.items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self.lock:
            hit = self.items.get(key)
            if hit is not None and now - hit[0] < REFRESH_S:
                self.items.move_to_end(key)
                return hit[1]
        obj = make()
        with self.lock:
            self.items[key] = (now, obj)
            self.items.move_to_end(key)
            while len(self.items) > CACHE:
                self.items.popitem(last=False)
        return obj


class FeatureServer:
    """The handlers: request checks, prepared fetchers and pushers, and the metrics they count."""

    def __init__(self, online_store: str | None = None, max_body: int = MAX_BODY) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.online_store = online_store
        self.max_body = max_body
        self.fetchers = _Cache()
        self.pushers = _Cache()
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "roost_feature_server_requests", "Requests by endpoint and status", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "roost_feature_server_request_seconds", "Request latency by endpoint", ["endpoint"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )  # fmt: skip
        self.pushed = Counter(
            "roost_feature_server_rows_pushed", "Rows pushed by view", ["view"], registry=self.registry
        )
        self.entity_rows = Counter(
            "roost_feature_server_entity_rows", "Entity rows read by get-online-features", registry=self.registry
        )

    async def body(self, request: Request) -> dict[str, Any]:
        """The JSON object body, refused past `max_body` bytes (413) or when it is not a JSON object (400)."""
        import orjson

        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise HTTPError(413, f"body of {declared} bytes is over the limit of {self.max_body}", _LIMIT_HINT)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise HTTPError(413, f"body is over the limit of {self.max_body} bytes", _LIMIT_HINT)
            chunks.append(chunk)
        try:
            obj = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as exc:
            raise HTTPError(400, f"body is not JSON: {exc}", "send a JSON object") from None
        if not isinstance(obj, dict):
            raise HTTPError(400, f"body must be a JSON object, got {type(obj).__name__}", "send {...}")
        return obj

    def get_online_features(self, req: dict[str, Any]) -> dict[str, Any]:
        """Feast's get-online-features answer for one parsed request."""
        from roost.features.serving import CREATED_TIME, EVENT_TIME, EXPIRED, OnlineFetcher

        _unknown(req, _TOP_GET)
        if "feature_service" in req:
            raise HTTPError(
                422, "field 'feature_service': roost has no feature services", 'list them: "features": ["view:field"]'
            )
        feats = req.get("features")
        if not isinstance(feats, list) or not feats or not all(isinstance(f, str) and f for f in feats):
            raise HTTPError(422, "field 'features' must be a non-empty list of 'view:field' strings", _GET_HINT)
        ents = req.get("entities")
        if not isinstance(ents, dict) or not ents:
            raise HTTPError(422, "field 'entities' must be an object of join key -> list of ids", _GET_HINT)
        full = req.get("full_feature_names", False)
        if not isinstance(full, bool):
            raise HTTPError(422, "field 'full_feature_names' must be true or false")
        key = (tuple(feats), full, tuple(ents))
        fetcher = self.fetchers.get(
            key,
            lambda: OnlineFetcher(feats, list(ents), full_names=full, online_store=self.online_store, with_times=True),
        )
        request_fields = fetcher.request_fields  # request-time features' inputs come in 'entities', as in Feast
        n = None
        for k, v in ents.items():
            if not isinstance(v, list) or not v:
                raise HTTPError(422, f"field 'entities.{k}' must be a non-empty list of ids", _GET_HINT)
            if k in request_fields:
                if any(isinstance(x, (dict, list)) for x in v):
                    raise HTTPError(422, f"field 'entities.{k}' (a request field) holds a list or an object")
            elif any(isinstance(x, (dict, list, bool)) or x is None for x in v):
                raise HTTPError(422, f"field 'entities.{k}' holds a value that is not an id", "ids: numbers or text")
            if n is not None and len(v) != n:
                raise HTTPError(422, "the lists in 'entities' differ in length", "give one id per row for every key")
            n = len(v)
        assert n is not None
        if n > MAX_ENTITY_ROWS:
            raise HTTPError(413, f"{n} entity rows are over the limit of {MAX_ENTITY_ROWS}", "split the request")
        ids = {k: v for k, v in ents.items() if k not in request_fields}
        raw = fetcher.fetch_lists(ids, {k: v for k, v in ents.items() if k in request_fields})
        self.entity_rows.inc(n)
        names = list(fetcher.selection.join_keys)
        results = []
        for k in names:
            results.append({"values": list(ents[k]), "statuses": ["PRESENT"] * n, "event_timestamps": [EPOCH] * n})
        for vs in fetcher.selection.views:
            times = raw[f"{EVENT_TIME}{vs.name}"]
            stamps = [_iso(t) for t in times]
            expired = raw.pop(f"{EXPIRED}{vs.name}", None) or [False] * n  # older than the view's ttl: no value
            for f, out in zip(vs.fields, vs.outputs):
                if out not in raw:  # a request view's input, not asked for
                    continue
                values = _json_values(raw[out], vs.spec["fields"][f])
                statuses = [
                    "NOT_FOUND" if t is None else "OUTSIDE_MAX_AGE" if x else "NULL_VALUE" if v is None else "PRESENT"
                    for v, t, x in zip(values, times, expired)
                ]
                names.append(out)
                results.append({"values": values, "statuses": statuses, "event_timestamps": stamps})
            raw.pop(f"{CREATED_TIME}{vs.name}", None)
        for rs in fetcher.selection.requests:  # computed from the request: present unless null, no event time
            for f, out in zip(rs.fields, rs.outputs):
                values = _json_values(raw[out], rs.spec["fields"][f])
                statuses = ["NULL_VALUE" if v is None else "PRESENT" for v in values]
                names.append(out)
                results.append({"values": values, "statuses": statuses, "event_timestamps": [EPOCH] * n})
        return {"metadata": {"feature_names": names}, "results": results}

    def push(self, req: dict[str, Any]) -> dict[str, Any]:
        """Push the request's rows (Feast's push body) into a view; answers the rows pushed."""
        from roost.features.push import DEFAULT_MODE, MODES, Pusher

        _unknown(req, _TOP_PUSH)
        view = req.get("view", req.get("push_source_name"))
        if not isinstance(view, str) or not view:
            raise HTTPError(422, "field 'push_source_name' (or 'view') must name a feature view", _PUSH_HINT)
        to = req.get("to", DEFAULT_MODE)
        if not isinstance(to, str) or to.strip().lower() not in MODES:
            raise HTTPError(
                422,
                f"field 'to' is {to!r}, not a push mode",
                'send "online", "offline" or "online_and_offline" (the default: training reads the offline log)',
            )
        df = req.get("df")
        if not isinstance(df, dict) or not df or not all(isinstance(v, list) for v in df.values()):
            raise HTTPError(422, "field 'df' must be an object of column -> list of values", _PUSH_HINT)
        pusher = self.pushers.get(view, lambda: Pusher(view, online_store=self.online_store))
        n = pusher.push(df, to=to)
        self.pushed.labels(view).inc(n)
        return {"view": view, "rows": n}


_LIMIT_HINT = "send fewer rows per request, or start the server with a larger --max-body"
_GET_HINT = 'e.g. {"features": ["user_stats:clicks"], "entities": {"user_id": [1, 2]}}'
_PUSH_HINT = (
    'e.g. {"push_source_name": "user_stats", "df": {"user_id": [1], "event_time": ["2024-05-01T00:00:00Z"], ...}}'
)


def _unknown(req: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(req) - known)
    if extra:
        raise HTTPError(422, f"unknown field(s) {extra}", f"this endpoint takes {sorted(known)}")


def _endpoint(
    fs: FeatureServer, name: str, handler: Callable[[dict[str, Any]], dict[str, Any]], threaded: bool
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: parse, run the handler (in a thread when it writes files), answer JSON; count it."""
    import orjson
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    async def endpoint(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            req = await fs.body(request)
            out = await run_in_threadpool(handler, req) if threaded else handler(req)
            status, body = 200, orjson.dumps(out)
        except HTTPError as exc:
            status, body = exc.status, orjson.dumps({"error": exc.message, "hint": exc.hint})
        except NotFoundError as exc:
            status, body = 404, orjson.dumps({"error": exc.message, "hint": exc.hint or ""})
        except RoostError as exc:
            status, body = 422, orjson.dumps({"error": exc.message, "hint": exc.hint or ""})
        fs.requests.labels(name, str(status)).inc()
        fs.latency.labels(name).observe(time.perf_counter() - t0)
        return Response(body, status_code=status, media_type="application/json")

    return endpoint


def create_app(
    online_store: str | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_NAMES,
    max_body: int = MAX_BODY,
) -> Starlette:
    """The feature server app under roost's server policy (Host allow-list, token when given, JSON state changes)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from roost.netpolicy.limits import ConnStats
    from roost.netpolicy.metrics import exposition

    fs = FeatureServer(online_store, max_body)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        conn, _ = exposition(request.app.state.conn_stats)
        return Response(generate_latest(fs.registry) + conn, media_type=CONTENT_TYPE_LATEST)

    get = _endpoint(fs, "get-online-features", fs.get_online_features, threaded=False)
    push = _endpoint(fs, "push", fs.push, threaded=True)
    routes = [
        Route("/get-online-features", get, methods=["POST"]),
        Route("/push", push, methods=["POST"]),
        Route("/features/push", push, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    guard = Middleware(Guard, allowed_hosts=allowed_hosts, token=token, open_paths={"/health"})
    app = Starlette(routes=routes, middleware=[guard])
    app.state.conn_stats = ConnStats()
    app.state.feature_server = fs
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 6566,
    token: str | None = None,
    allow_hosts: Sequence[str] = (),
    online_store: str | None = None,
    max_body: int = MAX_BODY,
) -> None:
    """Run the feature server with uvicorn until interrupted."""
    import uvicorn

    from roost.netpolicy.limits import ConnLimits, uvicorn_options

    app = create_app(online_store, token=token, allowed_hosts=allowed_hosts(host, allow_hosts), max_body=max_body)
    opts = uvicorn_options(ConnLimits.from_env(), "roost features serve", app.state.conn_stats)
    log.info("feature server on http://%s:%d", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", **opts)
