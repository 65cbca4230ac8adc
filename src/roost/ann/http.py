"""HTTP routes for served indexes: search, upsert, delete, reload, and two-stage recommend (Starlette)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from roost.ann.checks import check_ef, check_k
from roost.ann.serving import AnnState
from roost.errors import NotFoundError, RoostError
from roost.netpolicy import LOOPBACK_NAMES

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024
MAX_RESULTS = 1_000_000  # hits in one search answer (about 40 MB of JSON)


def _dumps(obj: Any) -> bytes:
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _response(obj: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    return Response(_dumps(obj), status_code=status, media_type="application/json")


def _error(status: int, message: str, hint: str | None = None) -> Any:
    return _response({"error": message, **({"hint": hint} if hint else {})}, status)


async def _body(request: Any, max_body: int) -> dict[str, Any]:
    """The JSON object of a request (NaN/Infinity literals are read, then refused by the vector checks)."""
    import orjson

    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > max_body:
        raise _TooLarge(int(size))
    raw = await request.body()
    if len(raw) > max_body:
        raise _TooLarge(len(raw))
    if not raw:
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise RoostError(f"request body is not valid JSON: {exc}", hint="send a JSON object") from None
        except RecursionError:
            raise RoostError("request body is nested too deeply", hint="send a JSON object of plain lists") from None
    if not isinstance(doc, dict):
        raise RoostError("request body must be a JSON object", hint='e.g. {"vector": [...], "k": 10}')
    return doc


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _handler(
    state: AnnState, fn: Callable[[AnnState, Any, dict[str, Any]], Any], max_body: int, read_body: bool = True
) -> Callable[[Any], Awaitable[Any]]:
    """An endpoint that parses the body, runs `fn` in a worker thread, and maps errors to 4xx JSON."""
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Any) -> Any:
        try:
            body = await _body(request, max_body) if read_body else {}
            return _response(await run_in_threadpool(fn, state, request.path_params, body))
        except _TooLarge as exc:
            return _error(
                413,
                f"request body of {exc.size} bytes is over the {max_body} byte limit",
                "send fewer vectors per request",
            )
        except NotFoundError as exc:
            return _error(404, exc.message, exc.hint)
        except RoostError as exc:
            return _error(400, exc.message, exc.hint)

    return endpoint


def _slot(state: AnnState, name: str) -> Any:
    slot = state.slots.get(name)
    if slot is None:
        from roost.errors import closest

        near = closest(name, list(state.slots))
        raise NotFoundError(
            f"index {name!r} is not served",
            hint=(f"did you mean {near!r}? " if near else "") + f"served: {sorted(state.slots)}",
        )
    return slot


def _one_of(body: dict[str, Any], *keys: str) -> str:
    given = [k for k in keys if k in body]
    if len(given) != 1:
        raise RoostError(
            f"send exactly one of {list(keys)}" + (f", got {given}" if given else ""),
            hint='e.g. {"vector": [0.1, 0.2, ...], "k": 10}',
        )
    return given[0]


def _check_size(queries: int, k: int, count: int) -> None:
    """Refuse a request whose answer would hold more than MAX_RESULTS hits (queries x min(k, index size))."""
    if queries * min(k, count) > MAX_RESULTS:
        raise RoostError(
            f"{queries} queries x k={k} asks for up to {queries * min(k, count):,} results; the limit is "
            f"{MAX_RESULTS:,} per request",
            hint="send fewer queries per request, or a smaller k",
        )


def _search(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    slot = _slot(state, params["name"])
    index = slot.index  # one version for the whole request, even if a swap happens meanwhile
    key = _one_of(body, "vector", "vectors", "id", "ids")
    k, flt, ef = check_k(body.get("k", 10)), body.get("filter"), check_ef(body.get("ef"))
    if key in ("id", "ids"):
        ids = [body["id"]] if key == "id" else body["ids"]
        if not isinstance(ids, list):
            raise RoostError("ids must be a list")
        _check_size(len(ids), k, len(index))
        res = index.search_ids(ids, k, flt, ef)
    else:
        vecs = [body["vector"]] if key == "vector" else body["vectors"]
        if key == "vector" and not isinstance(body["vector"], list):
            raise RoostError("vector must be a list of numbers")
        _check_size(len(vecs) if isinstance(vecs, list) else 1, k, len(index))
        res = index.search(vecs, k, flt, ef, exclude=body.get("exclude"))
    return {"index": slot.name, "version": index.meta.get("version"), "results": res.to_list()}


def _items(body: dict[str, Any]) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """ids, vectors, attribute columns from columnar or per-item upsert bodies."""
    if "items" in body:
        items = body["items"]
        if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i and "vector" in i for i in items):
            raise RoostError("items must be a list of {id, vector, attributes}")
        if not all(isinstance(i.get("attributes") or {}, dict) for i in items):
            raise RoostError("an item's attributes must be an object", hint='e.g. "attributes": {"category": "books"}')
        names = sorted({a for i in items for a in (i.get("attributes") or {})})
        return (
            [i["id"] for i in items],
            [i["vector"] for i in items],
            {a: [(i.get("attributes") or {}).get(a) for i in items] for a in names},
        )
    if "ids" not in body or "vectors" not in body:
        raise RoostError(
            "send ids and vectors (and optional attributes), or items",
            hint='{"ids": [1], "vectors": [[...]], "attributes": {"category": ["books"]}}',
        )
    attrs = body.get("attributes") or {}
    if not isinstance(attrs, dict) or not isinstance(body["ids"], list):
        raise RoostError("ids must be a list and attributes an object of lists")
    return body["ids"], body["vectors"], attrs


def _upsert(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    slot = _slot(state, params["name"])
    ids, vecs, attrs = _items(body)
    n = slot.upsert(ids, vecs, attrs)
    return {"index": slot.name, "upserted": n, "count": len(slot.index)}


def _delete(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    slot = _slot(state, params["name"])
    ids = body.get("ids")
    if not isinstance(ids, list):
        raise RoostError("send ids: a list of item ids to delete")
    missing = slot.delete(ids)
    deleted = len(set(ids)) - len(set(missing))  # ids passed the id checks: hashable ints or strings
    return {"index": slot.name, "deleted": deleted, "missing": missing, "count": len(slot.index)}


def check_own_ref(name: str, served_ref: str, ref: str) -> None:
    """Refuse a reload `ref` that is not a version of the served index: over HTTP a client may swap in another
    version or alias of `name` (or re-read the folder it was served from), never another folder on the server or
    another registered index, which would then answer under `name`."""
    from roost.ann.repo import parse_ref

    if ref == served_ref:
        return
    try:
        own = "\x00" not in ref and not ref.startswith((".", "/")) and parse_ref(ref)[0] == name
    except RoostError:
        own = False
    if not own:
        raise RoostError(
            f"ref {ref[:200]!r} is not a version of the served index {name!r}: reload swaps in another version of it",
            hint=f'send {{"version": N}}, or a ref such as "{name}/3" or "{name}@prod"; serve another index with '
            "its own `roost index serve`",
        )


def _reload(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    slot = _slot(state, params["name"])
    before = slot.version
    ref, version = body.get("ref"), body.get("version")
    if ref is not None and not isinstance(ref, str):
        raise RoostError(f"ref must be a string like 'items/3' or 'items@prod', got {ref!r}")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise RoostError(f"version must be a positive integer, got {version!r}", hint='e.g. {"version": 3}')
    if ref is not None:
        check_own_ref(slot.name, slot.ref, ref)
    ref = ref or (f"{slot.name}/{version}" if version is not None else None)
    swapped = slot.reload(ref, force=bool(body.get("force")))
    return {
        "index": slot.name,
        "swapped": swapped,
        "previous": before,
        "version": slot.version,
        "count": len(slot.index),
    }


def _info(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = _slot(state, params["name"]).info()
    return info


def _list(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {"indexes": [s.info() for s in state.slots.values()], "recommend": sorted(state.recommenders)}


def _recommend(state: AnnState, params: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    name = params["index"]
    rec = state.recommenders.get(name)
    if rec is None:
        _slot(state, name)
        raise NotFoundError(
            f"no recommender on index {name!r}", hint="start the server with --user-model (and --ranker) for this index"
        )
    users = [body["user"]] if "user" in body else body.get("users")
    if not isinstance(users, list):
        raise RoostError(
            "send user (an object of user features) or users (a list)", hint=f"the user tower reads {rec.user_columns}"
        )
    k = check_k(body.get("k", 10))
    _check_size(len(users), k, len(rec.slot.index))
    results = rec.recommend(
        users,
        k=k,
        candidates=body.get("candidates"),
        filter=body.get("filter"),
        exclude=body.get("exclude"),
    )
    return {"index": name, "version": rec.slot.index.meta.get("version"), "results": results}


def routes(state: AnnState, max_body: int = MAX_BODY) -> list[Any]:
    """Starlette routes for `state`: /v1/indexes[/{name}[/search|upsert|delete|reload]], /v1/recommend/{index}."""
    from starlette.routing import Route

    def h(fn: Callable[[AnnState, Any, dict[str, Any]], Any], body: bool = True) -> Callable[[Any], Awaitable[Any]]:
        return _handler(state, fn, max_body, body)

    return [
        Route("/v1/indexes", h(_list, False), methods=["GET"]),
        Route("/v1/indexes/{name}", h(_info, False), methods=["GET"]),
        Route("/v1/indexes/{name}/search", h(_search), methods=["POST"]),
        Route("/v1/indexes/{name}/upsert", h(_upsert), methods=["POST"]),
        Route("/v1/indexes/{name}/delete", h(_delete), methods=["POST"]),
        Route("/v1/indexes/{name}/reload", h(_reload), methods=["POST"]),
        Route("/v1/recommend/{index}", h(_recommend), methods=["POST"]),
    ]


def app(
    state: AnnState,
    token: str | None = None,
    max_body: int = MAX_BODY,
    allowed_hosts: Sequence[str] | None = LOOPBACK_NAMES,
) -> Any:
    """A standalone Starlette app: the ANN routes, /healthz, stops polling on shutdown; under roost's server
    policy (docs/security.md): the bearer token when given (not on /healthz), the Host allow-list (None: no Host
    check, e.g. mounted in `roost serve`, which checks it), same-origin JSON state changes."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from roost.netpolicy import Guard
    from roost.netpolicy.limits import ConnStats
    from roost.netpolicy.metrics import metrics_route

    async def health(request: Any) -> Any:
        return _response({"status": "ok", "indexes": {n: s.version for n, s in state.slots.items()}})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        state.close()

    guard = Middleware(Guard, allowed_hosts=allowed_hosts, token=token, open_paths={"/healthz"})
    served = Starlette(
        routes=[Route("/healthz", health), *routes(state, max_body), metrics_route()],
        lifespan=lifespan,
        middleware=[guard],
    )
    served.state.conn_stats = ConnStats()  # counted by the connection protocol, read by GET /metrics
    return served
