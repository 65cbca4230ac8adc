"""MLflow's artifact proxy (`mlflow server --serve-artifacts`): /api/2.0/mlflow-artifacts/artifacts/EXP/RUN/artifacts/
PATH streams uploads (PUT) and downloads (GET) to the run's real artifact location (local or S3), so MLflow clients
need no storage credentials. Only paths inside a run are served; read needs read on the run's experiment, writes edit.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from roost import artifacts
from roost.errors import RoostError
from roost.registry.store import RunDict, Store
from roost.server.mlflow.common import Ctx, MlflowError, answer_error, bad, make_ctx, missing, need_text, text
from roost.server.mlflow.runs import lookup as run_lookup
from roost.server.settings import ServerSettings

CHUNK = 1 << 20


def resolve(ctx: Ctx, path: str, role: str) -> tuple[str, RunDict, str]:
    """(the artifact's real URI, its run, its path inside the run) of proxy path EXP/RUN/artifacts/REL."""
    parts = path.strip("/").split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0].isdigit():
        raise missing(f"{path[:120]!r} is not a run's artifact path (EXPERIMENT_ID/RUN_ID/artifacts/PATH)")
    run = run_lookup(ctx, {"run_id": parts[1]}, role)
    if str(run["experiment_id"]) != parts[0]:
        raise missing(f"Run with id={parts[1]} not found in experiment {parts[0]}")
    rel = parts[3] if len(parts) == 4 else ""
    target = artifacts.safe_join(run["artifact_uri"], rel)  # RoostError (400) on '..' or an absolute path
    if artifacts.is_local(target):
        artifacts.check_inside(run["artifact_uri"], target)  # a symlink must not lead out of the run's folder
    return target, run, rel


def _listing(target: str) -> list[dict[str, Any]]:
    with artifacts.remote(target if "://" in target else "file://" + target) as (fs, root):
        if not fs.exists(root) or not fs.isdir(root):
            return []
        out = []
        for info in fs.ls(root, detail=True):
            name = posixpath.basename(str(info["name"]).rstrip("/"))
            entry: dict[str, Any] = {"path": name, "is_dir": info.get("type") == "directory"}
            if not entry["is_dir"]:
                entry["file_size"] = int(info.get("size") or 0)
            out.append(entry)
    return sorted(out, key=lambda e: e["path"])


def list_proxy(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET mlflow-artifacts/artifacts?path= → {files: [{path (a name), is_dir, file_size}]}."""
    path = text(f, "path", required=False) or ""
    parts = path.strip("/").split("/")
    if len(parts) < 3:  # above a run's folder: nothing is listed (runs are found through the tracking API)
        return {}
    target, _, _ = resolve(ctx, path, "read")
    files = _listing(target)
    return {"files": files} if files else {}


def list_run(ctx: Ctx, f: dict[str, Any]) -> dict[str, Any]:
    """GET mlflow/artifacts/list?run_id=&path= → {root_uri, files: [{path from the run's root, is_dir, size}]}."""
    run = run_lookup(ctx, f, "read")
    rel = (text(f, "path", required=False) or "").strip("/")
    target = artifacts.safe_join(run["artifact_uri"], rel)
    files = [{**e, "path": f"{rel}/{e['path']}" if rel else e["path"]} for e in _listing(target)]
    out: dict[str, Any] = {"root_uri": f"mlflow-artifacts:/{run['experiment_id']}/{run['run_id']}/artifacts"}
    if files:
        out["files"] = files
    return out


def _chunks(target: str) -> Iterator[bytes]:
    with artifacts.remote(target) as (fs, path), fs.open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            yield block


def _is_file(target: str) -> bool:
    if artifacts.is_local(target):
        return artifacts.local_path(target).is_file()
    with artifacts.remote(target) as (fs, path):
        return bool(fs.isfile(path))


async def download(ctx: Ctx, path: str) -> Response:
    """GET …/artifacts/PATH: the file's bytes, streamed."""
    target, _, rel = await run_in_threadpool(resolve, ctx, path, "read")
    if not await run_in_threadpool(_is_file, target):
        raise missing(f"artifact {rel!r} not found (or it is a folder: list it with ?path=)")
    if artifacts.is_local(target):
        return FileResponse(artifacts.local_path(target), media_type="application/octet-stream")
    return StreamingResponse(iterate_in_threadpool(_chunks(target)), media_type="application/octet-stream")


class _Sink:
    """Where an upload goes: a temporary sibling renamed into place (local), or the object itself (remote)."""

    def __init__(self, target: str) -> None:
        self.target, self.local = target, artifacts.is_local(target)
        if self.local:
            self.dest = artifacts.local_path(target)
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self.tmp: Path | None = self.dest.with_name(f".{self.dest.name}.{uuid.uuid4().hex}.part")
            self.fh: Any = open(self.tmp, "wb")  # closed in finish() or abort()
        else:
            self.tmp = None
            self._ctx = artifacts.remote(target)
            self.fs, self.path = self._ctx.__enter__()
            self.existed = bool(self.fs.exists(self.path))
            self.fh = self.fs.open(self.path, "wb")

    def finish(self) -> None:
        self.fh.close()
        if self.tmp is not None:
            os.replace(self.tmp, self.dest)
        else:
            self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Leave nothing of the upload behind (closing a remote file would store what was written so far)."""
        if self.tmp is not None:
            try:
                self.fh.close()
            finally:
                self.tmp.unlink(missing_ok=True)
            return
        try:
            discard = getattr(self.fh, "discard", None)  # fsspec's buffered files: drop the buffer, abort multipart
            if discard is not None:
                discard()
                self.fh.closed = True  # discarded: closing (also at garbage collection) must not upload anything
            if not self.existed and self.fs.exists(self.path):
                self.fs.rm(self.path)
        finally:
            self._ctx.__exit__(None, None, None)


async def upload(ctx: Ctx, path: str) -> Response:
    """PUT …/artifacts/PATH: the body streamed to the run's artifact location (at most max_upload_bytes)."""
    target, _, rel = await run_in_threadpool(resolve, ctx, path, "edit")
    if not rel:
        raise bad("upload to a file path inside the run, e.g. EXP/RUN/artifacts/model/MLmodel")
    limit = ctx.settings.max_upload_bytes
    sink = await run_in_threadpool(_Sink, target)
    size = 0
    try:
        async for block in ctx.request.stream():
            size += len(block)
            if size > limit:
                raise MlflowError(
                    "INVALID_PARAMETER_VALUE", f"upload of {rel!r} is over the limit of {limit:,} bytes", 413
                )
            if block:
                await run_in_threadpool(sink.fh.write, block)
    except BaseException:
        await run_in_threadpool(sink.abort)
        raise
    await run_in_threadpool(sink.finish)
    return JSONResponse({})


def _delete(target: str) -> None:
    with artifacts.remote(target if "://" in target else "file://" + target) as (fs, path):
        if not fs.exists(path):
            raise missing(f"artifact {path!r} not found")
        fs.rm(path, recursive=True)


async def delete(ctx: Ctx, path: str) -> Response:
    """DELETE …/artifacts/PATH: a file or folder of the run (edit)."""
    target, _, rel = await run_in_threadpool(resolve, ctx, path, "edit")
    if not rel:
        raise bad("delete a path inside the run's artifacts, not the whole folder")
    await run_in_threadpool(_delete, target)
    return JSONResponse({})


def streaming(
    settings: ServerSettings, store: Store, fn: Callable[[Ctx, str], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for a body-streaming artifact call, errors in MLflow's shape."""

    async def run(request: Request) -> Response:
        try:
            return await fn(make_ctx(request, settings, store), need_text(dict(request.path_params), "path"))
        except (MlflowError, RoostError) as exc:
            return answer_error(request, exc)

    return run
