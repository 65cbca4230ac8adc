"""Python tracking and registry API: roost.start_run, log_metric, search_runs, register_model, resolve_model."""

from __future__ import annotations

import atexit
import getpass
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roost import artifacts
from roost.errors import NotFoundError, RoostError, redact_url
from roost.registry import modelreg
from roost.registry.models import Run as RunRow
from roost.registry.store import Store, default_store, utcnow

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
FLUSH_MAX_POINTS = 5000
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "SKIPPED")
STAGED_TAG = "roost.artifacts.staged"  # set while a remote run's artifacts wait in a local folder (failed upload)
_active: list[Run] = []
_live: weakref.WeakSet[Run] = weakref.WeakSet()


def _git_info(cwd: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding `cwd`, or (None, None); one `git status` process."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    if out.returncode != 0:
        return None, None
    commit, dirty = None, False
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            dirty = True
    return (commit, dirty) if commit else (None, None)


class Run:
    """A live run: logs params, tags, buffered metrics and artifacts to the repository."""

    def __init__(self, store: Store, row: dict, staging: Path | None = None) -> None:
        self.store = store
        self.id: str = row["run_id"]
        self.info = row
        self.artifact_uri: str = row["artifact_uri"]
        self.remote = not artifacts.is_local(self.artifact_uri)
        self._staging = staging  # remote roots: the local mirror of the run's artifacts (see artifact_dir)
        self._uploaded: dict[str, tuple[int, int]] = {}  # staged file -> (size, mtime_ns) already on the store
        self._buf: list[tuple[str, float, int, float]] = []
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ended = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None  # started with the first metric point
        _live.add(self)

    # -- context manager ---------------------------------------------------------------------------------
    def __enter__(self) -> Run:
        _active.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if self in _active:
            _active.remove(self)
        if exc_type is None:
            self.end("FINISHED")
            return
        try:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
        except RoostError as err:  # the upload failed: say so, but let the run's own exception through
            log.error("%s", err)
            if exc is not None and hasattr(exc, "add_note"):
                exc.add_note(str(err))

    @property
    def staging_dir(self) -> Path:
        """Where a remote run's artifacts are staged locally: the workspace's .roost/staging/RUN_ID."""
        if self._staging is None:
            self._staging = staging_dir(self.id)
        return self._staging

    @property
    def artifact_dir(self) -> Path:
        """The run's artifact folder on local disk, created on demand.

        For a remote root (s3://...) it is a staging folder (.roost/staging/RUN_ID) mirroring the run's artifacts:
        write files there freely; they are uploaded when the run ends (log_artifact uploads at once), and the
        folder is removed once the upload succeeded.
        """
        if not self.remote:
            p = artifacts.local_path(self.artifact_uri)
        else:
            p = self.staging_dir
            if self._ended and not p.exists():
                raise RoostError(
                    f"run {self.id} has ended and its artifacts are at {redact_url(self.artifact_uri)}",
                    hint="read them with run.local_artifact(PATH) or `roost runs show`",
                )
        p.mkdir(parents=True, exist_ok=True)
        return p

    def local_artifact(self, path: str = "") -> Path:
        """A local path of artifact `path` (a file or folder).

        Local roots: the file itself. Remote roots: the staged copy while the run is open (or after a failed
        upload), else a copy downloaded once under .roost/cache/runs/RUN_ID/.
        """
        if not self.remote:
            return artifacts.local_path(artifacts.safe_join(self.artifact_uri, path))
        if not self._ended:
            return Path(artifacts.safe_join(str(self.staging_dir), path))
        return local_artifact({"run_id": self.id, "artifact_uri": self.artifact_uri}, path)

    # -- logging -----------------------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record one typed param (int/float/str/bool); params are immutable."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several params at once."""
        self.store.log_batch(self.id, params={str(k): v for k, v in params.items()})

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (mutable string)."""
        self.store.log_batch(self.id, tags={str(key): str(value)})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags."""
        self.store.log_batch(self.id, tags={str(k): str(v) for k, v in tags.items()})

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one metric point; flushed within a second, at end, or when the buffer is full."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Buffer a step's metrics together (a flush never splits a step)."""
        if self._ended:
            raise RoostError(f"run {self.id} has ended", hint="start a new run to log more metrics")
        ts = time.time()
        points = []
        for k, v in metrics.items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise RoostError(f"metric {k!r} must be a number, got {v!r}") from None
            if math.isnan(fv):
                raise RoostError(f"metric {k!r} is NaN", hint="log only finite values (or skip the point)")
            st = step if step is not None else self._steps.get(k, -1) + 1
            self._steps[k] = max(st, self._steps.get(k, -1))
            points.append((str(k), fv, int(st), ts))
        with self._lock:
            self._buf.extend(points)
            full = len(self._buf) >= FLUSH_MAX_POINTS
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name=f"roost-flush-{self.id[:8]}", daemon=True
                )
                self._flusher.start()
        if full:
            self.flush()

    def flush(self) -> None:
        """Write buffered metric points in one transaction."""
        with self._lock:
            batch, self._buf = self._buf, []
        if batch:
            try:
                self.store.log_batch(self.id, metrics=batch)
            except Exception:
                with self._lock:  # put them back so a later flush retries
                    self._buf[:0] = batch
                raise

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - keep the training loop alive; retried next tick
                log.warning("metric flush failed, will retry: %s", exc)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> str:
        """Copy a file (or folder) into the run's artifacts; returns its URI.

        On a remote root the file is uploaded at once and a copy kept in the staging folder (artifact_dir).
        """
        local_path = Path(local_path)
        rel = artifact_path if artifact_path is not None else local_path.name
        if artifact_path is not None and not local_path.is_dir() and artifact_path.endswith("/"):
            rel = artifact_path + local_path.name
        dest = artifacts.safe_join(self.artifact_uri, rel)
        if self.remote:
            self._stage_and_upload(local_path, dest)
        else:
            artifacts.put(local_path, dest)
        return dest

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> str:
        """Copy a folder's contents into the run's artifacts (under `artifact_path`)."""
        dest = artifacts.safe_join(self.artifact_uri, artifact_path)
        if self.remote:
            self._stage_and_upload(Path(local_dir), dest)
        else:
            artifacts.put(Path(local_dir), dest)
        return dest

    # -- remote roots: staging -----------------------------------------------------------------------------
    def _stage_and_upload(self, local: Path, dest: str) -> None:
        """Copy `local` into the staging folder at `dest`'s place, then upload the copied files."""
        if not local.exists():
            raise RoostError(f"artifact {local} does not exist", hint="check the path you passed to log_artifact")
        if self._ended:  # nothing is staged any more: straight to the store
            artifacts.put(local, dest)
            return
        root = self.artifact_dir
        rel = dest[len(self.artifact_uri.rstrip("/")) :].strip("/")
        staged = root / rel if rel else root
        if local.is_dir():
            src = local.resolve()
            if staged.resolve() != src:
                if staged.resolve().is_relative_to(src):
                    raise RoostError(
                        f"cannot log {local}: it holds the run's staging folder {root}",
                        hint="log a folder that does not contain the workspace's .roost/",
                    )
                shutil.copytree(local, staged, dirs_exist_ok=True)
            files = [(rel + "/" + f if rel else f) for f in artifacts.tree_files(local)]
        else:
            if staged.is_dir():
                raise RoostError(
                    f"artifact path {rel!r} is a folder in run {self.id}", hint="log the file under another name"
                )
            staged.parent.mkdir(parents=True, exist_ok=True)
            if not (staged.exists() and os.path.samefile(local, staged)):
                shutil.copy2(local, staged)
            files = [rel]
        self._upload(files)

    def _upload(self, rels: list[str]) -> None:
        stats = {r: (self.staging_dir / r).stat() for r in rels}
        artifacts.put_tree(self.staging_dir, self.artifact_uri, rels)
        for r, st in stats.items():
            self._uploaded[r] = (st.st_size, st.st_mtime_ns)

    def _pending(self, path: str | None = None) -> list[str]:
        """Staged files (under artifact `path`) that are not on the store yet, or changed since they were sent."""
        root = self.staging_dir
        if not root.exists():
            return []
        prefix = ""
        if path not in (None, "", "."):
            prefix = artifacts.safe_join("", path).lstrip("/")
        out = []
        for r in artifacts.tree_files(root):
            if prefix and r != prefix and not r.startswith(prefix + "/"):
                continue
            st = (root / r).stat()
            if self._uploaded.get(r) != (st.st_size, st.st_mtime_ns):
                out.append(r)
        return out

    def sync(self, path: str | None = None) -> list[str]:
        """Upload what was written into a remote run's staging folder since the last upload (under `path`).

        A no-op for local roots; returns the artifact paths uploaded.
        """
        if not self.remote:
            return []
        pending = self._pending(path)
        if pending:
            self._upload(pending)
        return pending

    def _finish_staging(self) -> RoostError | None:
        """At end: upload the staging folder's remaining files and remove it; on failure keep it and say where."""
        root = self._staging if self._staging is not None else staging_dir(self.id)
        if not root.exists():
            return None
        try:
            self.sync()
        except Exception as exc:  # noqa: BLE001 - keep every file; the caller raises the error below
            try:
                self.store.log_batch(self.id, tags={STAGED_TAG: str(root)})
            except Exception:  # noqa: BLE001 - the message below still names the folder
                pass
            return RoostError(
                f"run {self.id}: could not upload its artifacts to {redact_url(self.artifact_uri)} "
                f"({getattr(exc, 'message', None) or exc}); they are kept in {root}",
                hint=f"once the store is reachable: roost runs upload-staged {self.id} "
                f"(Python: roost.upload_staged('{self.id}'))",
            )
        shutil.rmtree(root, ignore_errors=True)
        return None

    def end(self, status: str = "FINISHED") -> None:
        """Flush and close the run with a final status."""
        if self._ended:
            return
        if status not in STATUSES:
            raise RoostError(f"unknown run status {status!r}", hint="one of " + ", ".join(STATUSES))
        self._stop.set()
        self._ended = True
        flush_error: BaseException | None = None
        try:
            self.flush()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the artifacts and the status
            flush_error = exc
        failed = self._finish_staging() if self.remote else None
        try:
            self.store.update_run(self.id, status=status, end_time=utcnow())
            self.info["status"] = status
        finally:
            if failed is not None and (flush_error is not None or sys.exc_info()[0] is not None):
                log.error("%s", failed)  # another error wins the raise: the kept folder is still told
        if flush_error is not None:
            raise flush_error
        if failed is not None:
            raise failed


def start_run(
    experiment: str = "default",
    name: str | None = None,
    params: dict | None = None,
    tags: dict | None = None,
    parent_run_id: str | None = None,
    store: Store | None = None,
) -> Run:
    """Start a run (use as a context manager: exception → FAILED, Ctrl-C → KILLED, else FINISHED)."""
    from roost import workspace

    st = store or default_store()
    ws = workspace.current()
    eid = st.get_or_create_experiment(experiment)
    run_id = uuid.uuid4().hex
    commit, dirty = _git_info(Path.cwd())
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001
        user = None
    root = ws.artifacts if "://" in ws.artifacts else "file://" + ws.artifacts
    row = RunRow(
        id=run_id,
        experiment_id=eid,
        name=name,
        status="RUNNING",
        start_time=utcnow(),
        user=user,
        git_commit=commit,
        git_dirty=dirty,
        source=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        parent_run_id=parent_run_id,
        artifact_uri=f"{root.rstrip('/')}/{eid}/{run_id}/artifacts",
    )
    st.create_run(row)
    if params or tags:
        st.log_batch(run_id, params=params, tags=tags)
    return Run(st, st.get_run(run_id), staging=ws.state_dir / "staging" / run_id)


def staging_dir(run_id: str) -> Path:
    """The local folder where a run with a remote artifact root stages its artifacts: .roost/staging/RUN_ID."""
    from roost import workspace

    return workspace.current().state_dir / "staging" / run_id


def local_artifact(run: dict | str, path: str = "") -> Path:
    """A local path of artifact `path` (file or folder) of a run (its dict or id), for code that needs files.

    Local roots: the file itself. Remote roots (s3://, …): the staged copy while the run stages (or after a failed
    upload), else a copy downloaded once under .roost/cache/runs/RUN_ID/artifacts/ (NotFoundError when absent).
    """
    from roost import workspace

    if isinstance(run, str):
        run = get_run(run)
    uri = artifacts.safe_join(run["artifact_uri"], path)
    if artifacts.is_local(uri):
        return artifacts.local_path(uri)
    staging = staging_dir(run["run_id"])
    if staging.exists():
        return Path(artifacts.safe_join(str(staging), path))
    rel = Path(artifacts.safe_join(str(staging), path)).relative_to(staging)
    return artifacts.fetch(uri, workspace.current().state_dir / "cache" / "runs" / run["run_id"] / "artifacts" / rel)


def upload_staged(run_id: str) -> list[str]:
    """Upload the artifacts a run left in its staging folder (its upload at end failed), then remove the folder.

    Returns the artifact paths uploaded.
    """
    from sqlalchemy import delete

    from roost.registry.models import Tag

    st = default_store()
    run = st.get_run(run_id)
    root = Path(run["tags"].get(STAGED_TAG) or staging_dir(run["run_id"]))
    if not root.is_dir():
        raise NotFoundError(
            f"run {run['run_id']} has no staged artifacts in {root}",
            hint="nothing to upload: its artifacts were uploaded when it ended",
        )
    if artifacts.is_local(run["artifact_uri"]):
        raise RoostError(
            f"run {run['run_id']} keeps its artifacts locally at {run['artifact_uri']}",
            hint=f"nothing to upload; remove {root} if it is left over",
        )
    sent = artifacts.put_tree(root, run["artifact_uri"])
    with st.write() as s:
        s.execute(delete(Tag).where(Tag.run_id == run["run_id"], Tag.key == STAGED_TAG))
    shutil.rmtree(root, ignore_errors=True)
    return sent


def active_run() -> Run | None:
    """The innermost run opened with `with roost.start_run()`, or None."""
    return _active[-1] if _active else None


def _need_active() -> Run:
    r = active_run()
    if r is None:
        raise RoostError("no active run", hint="wrap the code in `with roost.start_run():`")
    return r


def log_param(key: str, value: Any) -> None:
    """Log a param on the active run."""
    _need_active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Log params on the active run."""
    _need_active().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Log a metric point on the active run."""
    _need_active().log_metric(key, value, step)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log a step's metrics on the active run."""
    _need_active().log_metrics(metrics, step)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> str:
    """Copy a file into the active run's artifacts."""
    return _need_active().log_artifact(local_path, artifact_path)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _need_active().set_tag(key, value)


def search_runs(
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    order_by: str | list[str] | None = None,
    limit: int | None = 1000,
    offset: int = 0,
) -> list[dict]:
    """Runs matching a filter (see roost.registry.query), newest first unless ordered."""
    return default_store().search_runs(filter, experiment, order_by, limit, offset)


def get_run(run_id: str) -> dict:
    """A run as a dict (params, latest metrics, tags, status, artifact_uri...)."""
    return default_store().get_run(run_id)


def metric_history(run_id: str, key: str | None = None) -> list[dict]:
    """Every logged point of a run's metrics."""
    return default_store().metric_history(default_store().get_run(run_id)["run_id"], key)


def delete_run(run_id: str) -> None:
    """Delete a run and its records."""
    default_store().delete_run(run_id)


def list_experiments() -> list[dict]:
    """Experiments with run counts."""
    return default_store().list_experiments()


def register_model(run_id: str | None, name: str, path: str = "model") -> modelreg.ModelVersionInfo:
    """Register the package at artifact `path` of `run_id` (or a local folder when run_id is None)."""
    st = default_store()
    if run_id is None:
        p = Path(path).resolve()
        v = modelreg.register(st, name, "file://" + str(p), None)
    else:
        run = st.get_run(run_id)
        for live in list(_live):  # a remote run still open: send what was written into its staging folder
            if live.id == run["run_id"] and not live._ended:
                live.sync(path)
        source = artifacts.safe_join(run["artifact_uri"], path)
        v = modelreg.register(st, name, source, run["run_id"])
    return resolve_model(f"{v.name}/{v.version}")


def set_alias(name: str, version: int, alias: str) -> None:
    """Point name@alias at a version."""
    modelreg.set_alias(default_store(), name, int(version), alias)


def resolve_model(uri: str) -> modelreg.ModelVersionInfo:
    """'name@alias' | 'name/3' | 'name' → version record with a local package path."""
    from roost import workspace

    return modelreg.resolve(default_store(), uri, workspace.current().state_dir / "cache")


def list_models() -> list[dict]:
    """Registered models."""
    return modelreg.list_models(default_store())


def list_versions(name: str) -> list[modelreg.ModelVersionInfo]:
    """Versions of a model."""
    return modelreg.list_versions(default_store(), name)


@atexit.register
def _end_live_runs() -> None:
    """At interpreter exit: flush every open run and mark it FINISHED (MLflow's behaviour)."""
    for r in list(_live):
        try:
            if not r._ended:
                r.end("FINISHED")
        except RoostError as exc:  # e.g. the artifact upload failed: the message names the kept folder
            log.error("%s", exc)
        except Exception:  # noqa: BLE001
            pass


def iter_runs(filter: str | None = None, page: int = 1000) -> Iterator[dict]:
    """Stream all matching runs, a page at a time."""
    off = 0
    while True:
        batch = search_runs(filter, limit=page, offset=off)
        yield from batch
        if len(batch) < page:
            return
        off += page


__all__ = [
    "Run",
    "start_run",
    "active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "log_artifact",
    "set_tag",
    "search_runs",
    "get_run",
    "delete_run",
    "list_experiments",
    "register_model",
    "set_alias",
    "resolve_model",
    "list_models",
    "list_versions",
    "metric_history",
    "upload_staged",
]
