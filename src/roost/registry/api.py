"""Python tracking and registry API: roost.start_run, log_metric, search_runs, register_model, resolve_model."""
from __future__ import annotations

import atexit
import getpass
import logging
import math
import subprocess
import sys
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterator

from roost import artifacts
from roost.errors import RoostError
from roost.registry import modelreg
from roost.registry.models import Run as RunRow
from roost.registry.store import Store, default_store, utcnow

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
FLUSH_MAX_POINTS = 5000
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "SKIPPED")
_active: list["Run"] = []
_live: "weakref.WeakSet[Run]" = weakref.WeakSet()


def _git_info(cwd: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding `cwd`, or (None, None); one `git status` process."""
    try:
        out = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd=cwd,
                             capture_output=True, text=True, timeout=5)
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

    def __init__(self, store: Store, row: dict) -> None:
        self.store = store
        self.id: str = row["run_id"]
        self.info = row
        self.artifact_uri: str = row["artifact_uri"]
        self._buf: list[tuple[str, float, int, float]] = []
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ended = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None  # started with the first metric point
        _live.add(self)

    # -- context manager ---------------------------------------------------------------------------------
    def __enter__(self) -> "Run":
        _active.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if self in _active:
            _active.remove(self)
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED")
        else:
            self.end("FAILED")

    @property
    def artifact_dir(self) -> Path:
        """The run's artifact folder on local disk (file:// roots only)."""
        if not artifacts.is_local(self.artifact_uri):
            raise RoostError("this run's artifacts are remote", hint="use log_artifact to upload files")
        p = artifacts.local_path(self.artifact_uri)
        p.mkdir(parents=True, exist_ok=True)
        return p

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
                self._flusher = threading.Thread(target=self._flush_loop, name=f"roost-flush-{self.id[:8]}",
                                                 daemon=True)
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
        """Copy a file (or folder) into the run's artifacts; returns its URI."""
        local_path = Path(local_path)
        rel = artifact_path if artifact_path is not None else local_path.name
        if artifact_path is not None and not local_path.is_dir() and artifact_path.endswith("/"):
            rel = artifact_path + local_path.name
        dest = artifacts.safe_join(self.artifact_uri, rel)
        artifacts.put(local_path, dest)
        return dest

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> str:
        """Copy a folder's contents into the run's artifacts (under `artifact_path`)."""
        dest = artifacts.safe_join(self.artifact_uri, artifact_path)
        artifacts.put(Path(local_dir), dest)
        return dest

    def end(self, status: str = "FINISHED") -> None:
        """Flush and close the run with a final status."""
        if self._ended:
            return
        if status not in STATUSES:
            raise RoostError(f"unknown run status {status!r}", hint="one of " + ", ".join(STATUSES))
        self._stop.set()
        self._ended = True
        try:
            self.flush()
        finally:
            self.store.update_run(self.id, status=status, end_time=utcnow())
            self.info["status"] = status


def start_run(experiment: str = "default", name: str | None = None, params: dict | None = None,
              tags: dict | None = None, parent_run_id: str | None = None, store: Store | None = None) -> Run:
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
    row = RunRow(id=run_id, experiment_id=eid, name=name, status="RUNNING", start_time=utcnow(), user=user,
                 git_commit=commit, git_dirty=dirty, source=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                 parent_run_id=parent_run_id, artifact_uri=f"{root.rstrip('/')}/{eid}/{run_id}/artifacts")
    st.create_run(row)
    if params or tags:
        st.log_batch(run_id, params=params, tags=tags)
    return Run(st, st.get_run(run_id))


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


def search_runs(filter: str | None = None, experiment: str | list[str] | None = None,
                order_by: str | list[str] | None = None, limit: int | None = 1000, offset: int = 0) -> list[dict]:
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


__all__ = ["Run", "start_run", "active_run", "log_param", "log_params", "log_metric", "log_metrics",
           "log_artifact", "set_tag", "search_runs", "get_run", "delete_run", "list_experiments",
           "register_model", "set_alias", "resolve_model", "list_models", "list_versions", "metric_history"]
