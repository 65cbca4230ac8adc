"""The artifact proxy (/api/v1/artifacts/runs/{run_id}/{path}): clients read and write a run's artifacts through
the server, which holds the storage credentials. GET streams a file (a folder: a JSON listing of its files), PUT
streams an upload (size-limited: 413, nothing written), DELETE removes; read / edit on the run's experiment.
Paths are checked: no '..', no absolute path, no NUL or backslash, and (local roots) nothing outside the run's folder
through a symlink."""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from roost import artifacts
from roost.errors import NotFoundError, RoostError, redact_url
from roost.registry.sqlstore import SqlStore, sql_store
from roost.server import permissions
from roost.server.common import TooLarge, experiment_of, json_response, who
from roost.server.settings import ServerSettings

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SPOOL_MEMORY = 8 << 20  # uploads up to this size stay in memory before they reach the store


class StoreUnavailable(RoostError):
    """The artifact store behind the proxy failed (HTTP 502)."""

    status = 502


def check_rel(rel: str) -> str:
    """`rel` as a clean relative POSIX path; RoostError (400) for traversal and tricks."""
    if "\x00" in rel or "\\" in rel:
        raise RoostError("artifact path must not contain NUL or backslash characters")
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        raise RoostError("artifact path must be relative to the run's artifacts")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise RoostError("artifact path must not contain '..'")
    return "/".join(parts)


def _target(store: SqlStore, run_id: str, rel: str) -> tuple[str, str]:
    """(the run's artifact root, the storage URI of `rel` under it), checked to stay inside the root."""
    run = store.runs_by_ids([run_id], reap=False).get(run_id)
    if run is None:
        raise NotFoundError(f"run {run_id!r} not found")
    root = run["artifact_uri"]
    uri = artifacts.safe_join(root, rel) if rel else root
    if artifacts.is_local(root):
        artifacts.check_inside(artifacts.local_path(root), artifacts.local_path(uri))
    return root, uri


def _listing(uri: str) -> dict[str, Any]:
    with artifacts.remote(uri) as (fs, path):
        path = path.rstrip("/")
        if not fs.exists(path):
            raise NotFoundError("no such artifact")
        found = fs.find(path, detail=True)
    files = [{"path": posixpath.relpath(p, path), "size": info.get("size")} for p, info in sorted(found.items())]
    return {"type": "directory", "files": files}


def _kind(uri: str) -> tuple[str, int | None]:
    with artifacts.remote(uri) as (fs, path):
        path = path.rstrip("/")
        if fs.isfile(path):
            return "file", int(fs.size(path))
        if fs.isdir(path):
            return "directory", None
    raise NotFoundError("no such artifact")


def _chunks(uri: str) -> Iterator[bytes]:
    with artifacts.remote(uri) as (fs, path), fs.open(path.rstrip("/"), "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def _write(spool: Any, uri: str) -> None:
    spool.seek(0)
    if artifacts.is_local(uri):
        dest = artifacts.local_path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        with open(part, "wb") as out:
            shutil.copyfileobj(spool, out, CHUNK)
        part.replace(dest)
        return
    with artifacts.remote(uri) as (fs, path), fs.open(path, "wb") as out:
        shutil.copyfileobj(spool, out, CHUNK)


def _delete(uri: str) -> None:
    with artifacts.remote(uri) as (fs, path):
        path = path.rstrip("/")
        if not fs.exists(path):
            raise NotFoundError("no such artifact")
        fs.rm(path, recursive=True)


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """The proxy's routes (mounted at /api/v1/artifacts)."""

    async def handle(request: Request) -> Response:
        ident = who(request)
        store = sql_store(settings.store_url)
        run_id = str(request.path_params["run_id"])
        rel = check_rel(str(request.path_params.get("path", "")))
        role = "read" if request.method in ("GET", "HEAD") else "edit"
        exp = await run_in_threadpool(experiment_of, store, run_id)
        permissions.require(store, ident, "experiment", exp, role, settings.default_role)
        _root, uri = await run_in_threadpool(_target, store, run_id, rel)
        if request.method == "PUT" and not rel:
            raise RoostError("PUT needs a file path under the run's artifacts")
        try:
            return await _serve(request, uri, rel, settings)
        except (NotFoundError, TooLarge):
            raise
        except (RoostError, OSError) as exc:  # the storage failed: logged here, never its URI or keys to clients
            log.error("artifact proxy: %s %s failed: %s", request.method, redact_url(uri), exc)
            raise StoreUnavailable("the artifact store failed (see the server log)", hint="retry later") from None

    methods = ["GET", "PUT", "DELETE"]
    return [
        Route("/runs/{run_id}", handle, methods=methods),
        Route("/runs/{run_id}/{path:path}", handle, methods=methods),
    ]


async def _serve(request: Request, uri: str, rel: str, settings: ServerSettings) -> Response:
    """Answer one proxy request on the storage URI `uri` (artifact path `rel`)."""
    if request.method == "PUT":
        await _upload(request, uri, settings.max_upload_bytes)
        return json_response({"path": rel})
    if request.method == "DELETE":
        await run_in_threadpool(_delete, uri)
        return json_response({"path": rel})
    kind, size = await run_in_threadpool(_kind, uri) if rel else ("directory", None)
    if request.query_params.get("stat"):
        return json_response({"type": kind, "size": size})
    if kind == "directory":
        listing = json_response(await run_in_threadpool(_listing, uri))
        listing.headers["X-Roost-Kind"] = "directory"
        return listing
    headers = {"Content-Length": str(size), "X-Roost-Kind": "file"}
    return StreamingResponse(_chunks(uri), media_type="application/octet-stream", headers=headers)


async def _upload(request: Request, uri: str, limit: int) -> None:
    """Spool the body (refused past `limit` before anything reaches the store), then write it in one go."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"upload of {int(declared):,} bytes is over the limit of {limit:,}", hint="ask an admin")
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY) as spool:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"upload is over the limit of {limit:,} bytes", hint="ask an admin")
            await run_in_threadpool(spool.write, chunk)
        await run_in_threadpool(_write, spool, uri)
