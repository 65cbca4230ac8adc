"""A live run: params, tags, buffered metrics and artifacts written to the repository; its lifecycle hooks."""

from __future__ import annotations

import functools
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
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.exc import IntegrityError

from roost import artifacts
from roost.errors import NotFoundError, RoostError, redact_url
from roost.registry import deferred
from roost.registry.backend import default_store
from roost.registry.interface import TrackingStore
from roost.registry.lifecycle import ERROR_TAG, Terminated, describe_error, runs
from roost.registry.places import staging_dir as staging_dir
from roost.registry.places import state_dir
from roost.registry.rest import ServerUnavailable
from roost.registry.store import decode_param, param_rows, utcnow

log = logging.getLogger(__name__)

FLUSH_MAX_POINTS = 5000  # a full buffer is flushed at once, by the logging thread
BATCH_MAX_POINTS = 50_000  # points per write: a backlog (after a server outage) goes in several batches
# Points a run keeps while its store cannot be written (e.g. a roost server restarting). Past it, the OLDEST points
# are dropped, with a warning: training never blocks on the store. About 100 bytes a point: ~100 MB at the bound.
MAX_BUFFERED_POINTS = 1_000_000
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "LOST", "SKIPPED")
STAGED_TAG = "roost.artifacts.staged"  # set while a remote run's artifacts wait in a local folder (failed upload)
RunDict = dict[str, Any]
MetricPoint = tuple[str, float, int, float]
KEY_MAX = 256  # the key columns of params, metrics and tags are VARCHAR(256)
STEP_MIN, STEP_MAX = -(2**31), 2**31 - 1  # metrics.step is INTEGER: 32 bits on PostgreSQL


# -- checks of what is logged: refused when logged, never left in a batch that then fails to write ----------------
def check_key(kind: str, key: Any) -> str:
    """The stored name of a param, metric or tag: non-blank text without NUL, at most KEY_MAX characters."""
    text = str(key)
    if not text.strip():
        raise RoostError(f"{kind} name {text!r} is empty", hint=f"give the {kind} a name")
    if "\x00" in text:
        raise RoostError(f"{kind} name {text[:60]!r} contains a NUL byte", hint="remove the \\x00 character")
    if len(text) > KEY_MAX:
        raise RoostError(
            f"{kind} name {text[:60]!r}… is {len(text)} characters long", hint=f"use at most {KEY_MAX} characters"
        )
    return text


def check_text(kind: str, key: str, value: str) -> str:
    """A param or tag value as text: NUL bytes are refused (PostgreSQL cannot store them; SQLite tools cut them)."""
    if "\x00" in value:
        raise RoostError(f"{kind} {key!r}: its value contains a NUL byte", hint="remove the \\x00 character")
    return value


def check_param(key: str, value: Any) -> Any:
    """A param value as typed_param stores it: NumPy scalars as Python numbers, huge ints refused, no NUL."""
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()  # np.float32(1.5) -> 1.5: stored as a float, not as the text '1.5'
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            raise RoostError(
                f"param {key!r} is an integer too large to compare as a number ({len(str(value))} digits)",
                hint="log it as text: str(value)",
            ) from None
        return value
    if isinstance(value, bool | float) or value is None:
        return value
    check_text("param", key, str(value))
    return value


def check_params(params: dict[Any, Any]) -> dict[str, Any]:
    """Params with checked names and values (RoostError naming the first bad one)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = check_key("param", k)
        out[key] = check_param(key, v)
    return out


def check_tags(tags: dict[Any, Any]) -> dict[str, str]:
    """Tags as text, with checked names and values."""
    out: dict[str, str] = {}
    for k, v in tags.items():
        key = check_key("tag", k)
        out[key] = check_text("tag", key, str(v))
    return out


def check_step(step: Any) -> int:
    """A metric step: a whole number that fits metrics.step (STEP_MIN..STEP_MAX)."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    try:
        st = step.__index__() if not isinstance(step, bool) else int(step)
    except (AttributeError, TypeError):
        raise RoostError(f"metric step {step!r} is not a whole number", hint="steps are 0, 1, 2, …") from None
    if not STEP_MIN <= st <= STEP_MAX:
        raise RoostError(f"metric step {st} is out of range", hint=f"steps go from {STEP_MIN} to {STEP_MAX}")
    return int(st)


_checkouts: dict[Path, bool] = {}  # folder -> a .git above it (per process: a folder rarely becomes a checkout)


def _in_git_checkout(cwd: Path) -> bool:
    """Whether `cwd` may be inside a git checkout: a .git above it, or GIT_DIR set (stat calls once per folder).

    Inside a checkout each run still starts one `git status`: its dirty flag must see edits made since the last run.
    """
    if os.environ.get("GIT_DIR"):
        return True
    found = _checkouts.get(cwd)
    if found is None:
        found = _checkouts[cwd] = any((d / ".git").exists() for d in (cwd, *cwd.parents))
    return found


def _git_info(cwd: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git checkout holding `cwd`, or (None, None); one `git status` process in a checkout."""
    if not _in_git_checkout(cwd):
        return None, None
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
    """A live run: logs params, tags, buffered metrics and artifacts to the repository.

    Its metric points are buffered and written by the process's background thread (roost.registry.lifecycle) every
    FLUSH_INTERVAL_S, together with the run's heartbeat; `flush()` and `end()` return only once every point logged
    before them is committed.
    """

    def __init__(self, store: TrackingStore, row: RunDict, staging: Path | None = None, owner: bool = True) -> None:
        self.store = store
        self.id: str = row["run_id"]
        self.info = row
        self.artifact_uri: str = row["artifact_uri"]
        self.remote = not artifacts.is_local(self.artifact_uri)
        self.owner = owner  # False: attached to a run another process opened; end() only flushes and detaches
        self._staging = staging  # remote roots: the local mirror of the run's artifacts (see artifact_dir)
        self._uploaded: dict[str, tuple[int, int]] = {}  # staged file -> (size, mtime_ns) already on the store
        self._buf: list[MetricPoint] = []
        self._unsent: tuple[str, list[MetricPoint]] | None = None  # a batch whose write failed: resent with its key
        self._dropped = 0  # points dropped past MAX_BUFFERED_POINTS
        self._steps: dict[str, int] = {}
        self._lock = threading.Lock()  # guards the buffer and _ended
        self._flush_lock = threading.Lock()  # one batch in flight at a time: flush() waits for the one being written
        self._ended = False
        self.last_heartbeat = time.monotonic()  # when this process last wrote the run's heartbeat
        runs.register(self)

    @property
    def ended(self) -> bool:
        """True once end() was called (or the run was detached)."""
        return self._ended

    # -- context manager ---------------------------------------------------------------------------------
    def __enter__(self) -> Run:
        runs.push(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        runs.pop(self)
        if exc_type is None:
            self.end("FINISHED")
            return
        self.end_raised(exc if exc is not None else exc_type())

    def end_raised(self, exc: BaseException) -> None:
        """End the run for an exception that left its code: FINISHED for sys.exit(0), KILLED for Ctrl-C/SIGTERM,
        else FAILED with the error described in a tag. An upload failure is logged and noted on `exc`, not raised."""
        status, error = status_for(exc)
        try:
            self.end(status, error=error)
        except RoostError as err:  # the upload failed: say so, but let the run's own exception through
            log.error("%s", err)
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
            return local_artifact({"run_id": self.id, "artifact_uri": self.artifact_uri}, path)
        if not self._ended:
            return Path(artifacts.safe_join(str(self.staging_dir), path))
        return local_artifact({"run_id": self.id, "artifact_uri": self.artifact_uri}, path)

    # -- logging -----------------------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record one typed param (int/float/str/bool); params are immutable."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several params at once."""
        self._write("params", params=check_params(params))

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (mutable string)."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags."""
        self._write("tags", tags=check_tags(tags))

    def _write(self, what: str, **batch: Any) -> None:
        """store.log_batch for this run; a run deleted under it is a NotFoundError, not a foreign-key error."""
        try:
            self.store.log_batch(self.id, **batch)
        except IntegrityError:
            if self._gone():
                raise NotFoundError(
                    f"run {self.id} was deleted: its {what} could not be written",
                    hint="start a new run to log more",
                ) from None
            raise

    def _gone(self) -> bool:
        """True when this run's row is no longer in the store."""
        return self.id not in self.store.runs_by_ids([self.id], reap=False)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one metric point; flushed within a second, at end, or when the buffer is full."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Buffer a step's metrics together (a flush never splits a step)."""
        if self._ended:
            raise RoostError(f"run {self.id} has ended", hint="start a new run to log more metrics")
        ts = time.time()
        points: list[MetricPoint] = []
        given = None if step is None else check_step(step)
        for k, v in metrics.items():
            key = check_key("metric", k)
            try:
                fv = float(v)
            except (TypeError, ValueError, OverflowError):
                shown = repr(v) if len(repr(v)) <= 60 else repr(v)[:60] + "…"
                raise RoostError(f"metric {key!r} must be a number that fits a float, got {shown}") from None
            if math.isnan(fv):
                raise RoostError(f"metric {key!r} is NaN", hint="log only finite values (or skip the point)")
            points.append((key, fv, given if given is not None else check_step(self._steps.get(key, -1) + 1), ts))
        for key, _v, st, _ts in points:  # only once every point of the step is valid
            self._steps[key] = max(st, self._steps.get(key, -1))
        with self._lock:
            self._buf.extend(points)
            over = len(self._buf) - MAX_BUFFERED_POINTS
            if over > 0:
                del self._buf[:over]
                self._dropped += over
            full = len(self._buf) >= FLUSH_MAX_POINTS
        if over > 0:
            log.warning(
                "roost: run %s: the store is unreachable and %d points wait; dropped the %d oldest (%d so far)",
                self.id, MAX_BUFFERED_POINTS, over, self._dropped,
            )  # fmt: skip
        if full:
            try:
                self.flush()
            except ServerUnavailable as exc:  # kept in the buffer; the flusher thread retries with the same key
                log.warning("roost: run %s: %s; %d points kept for later", self.id, exc, len(self._buf))

    def flush_pending(self) -> bool:
        """True when metric points wait in the buffer."""
        return bool(self._buf) or self._unsent is not None

    def flush(self) -> None:
        """Write the buffered metric points (and the heartbeat) in one transaction.

        Returns once they are committed, and also any batch the background thread was writing when it was called.
        """
        with self._flush_lock:
            while True:
                with self._lock:
                    if self._unsent is None:
                        if not self._buf:
                            return
                        batch = self._buf[:BATCH_MAX_POINTS]
                        del self._buf[:BATCH_MAX_POINTS]
                        self._unsent = (uuid.uuid4().hex, batch)
                    key, batch = self._unsent
                try:  # a failed write (also SIGTERM/Ctrl-C mid-write) keeps the batch and its key for the retry
                    self._write(f"{len(batch)} metric point(s)", metrics=batch, heartbeat=True, idempotency_key=key)
                except NotFoundError:  # the run was deleted: its points cannot be written anywhere, not even later
                    self._unsent = None
                    raise
                self._unsent = None
                self.last_heartbeat = time.monotonic()

    def _close(self, status: str, error: str | None) -> bool:
        """Write the last metric points, the error tag and the final status in one transaction; False if it failed.

        On failure nothing of it is committed (the points are back in the buffer): end() then takes the step-by-step
        path, which still sets the status when the points cannot be written.
        """
        with self._flush_lock:
            with self._lock:
                if self._unsent is not None or len(self._buf) > BATCH_MAX_POINTS:
                    return False  # a batch waits to be resent with its key: end() flushes step by step
                batch, self._buf = self._buf, []
            try:
                self.store.log_batch(
                    self.id,
                    tags={ERROR_TAG: error} if error else None,
                    metrics=batch,
                    heartbeat=bool(batch),
                    finish=(status, utcnow()),
                )
            except Exception as exc:  # noqa: BLE001 - retried step by step by end(), which raises what persists
                log.debug("run %s: one-transaction end failed (%s), ending step by step", self.id, exc)
                with self._lock:
                    self._buf[:0] = batch
                return False
            except BaseException:  # SIGTERM/Ctrl-C mid-write: keep the points for the exit hook's final flush
                with self._lock:
                    self._buf[:0] = batch
                raise
        self.info["status"] = status
        return True

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> str:
        """Copy a file (or folder) into the run's artifacts; returns its URI.

        On a remote root the file is uploaded at once and a copy kept in the staging folder (artifact_dir).
        """
        local_path = Path(local_path)
        rel = artifact_path if artifact_path not in (None, "", ".") else local_path.name  # '': at the root
        if artifact_path is not None and not local_path.is_dir() and artifact_path.endswith("/"):
            rel = artifact_path + local_path.name
        dest = artifacts.safe_join(self.artifact_uri, rel)
        if self.remote:
            self._stage_and_upload(local_path, dest)
        else:
            artifacts.put(local_path, dest, root=self.artifact_uri)
        return dest

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> str:
        """Copy a folder's contents into the run's artifacts (under `artifact_path`)."""
        dest = artifacts.safe_join(self.artifact_uri, artifact_path)
        if self.remote:
            self._stage_and_upload(Path(local_dir), dest)
        else:
            artifacts.put(Path(local_dir), dest, root=self.artifact_uri)
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
        artifacts.check_inside(root, staged)
        if local.is_dir():
            for f in artifacts.tree_files(local):
                artifacts.check_inside(root, staged / f)
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
        out: list[str] = []
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

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush (waiting for a batch in flight) and close the run with a final status; `error` goes in a tag.

        A run attached from another process (owner=False) is only flushed and detached: its owner sets the status.
        """
        if status not in STATUSES:
            raise RoostError(f"unknown run status {status!r}", hint="one of " + ", ".join(STATUSES))
        if status == "KILLED":  # stopped (SIGTERM, Ctrl-C): its background work gets a short bound, then a tag
            deferred.stop(self.id, why="the run was killed (SIGTERM or Ctrl-C)")
        else:
            deferred.wait(self.id)  # its background work (autolog's model, training metrics) is part of the run
        with self._lock:
            if self._ended:
                return
            self._ended = True
        runs.unregister(self)
        # one request to a server: the last points and the status together (a remote root with files still staged
        # uploads them first, below, so that the run never reads FINISHED before its artifacts are there)
        staged = self.remote and (self._staging if self._staging is not None else staging_dir(self.id)).exists()
        if self.owner and not staged and self._close(status, error):
            return
        flush_error: BaseException | None = None
        try:
            self.flush()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the artifacts and the status
            flush_error = exc
        if not self.owner:
            if flush_error is not None:
                raise flush_error
            return
        failed = self._finish_staging() if self.remote else None
        try:
            if error:
                self.store.log_batch(self.id, tags={ERROR_TAG: error})
            self.store.update_run(self.id, status=status, end_time=utcnow())
            self.info["status"] = status
        finally:
            if failed is not None and (flush_error is not None or sys.exc_info()[0] is not None):
                log.error("%s", failed)  # another error wins the raise: the kept folder is still told
        if flush_error is not None:
            raise flush_error
        if failed is not None:
            raise failed


def status_for(exc: BaseException | None) -> tuple[str, str | None]:
    """(status, error tag) of a run whose code raised `exc` (None: it returned): the mapping every run ending uses."""
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
        return "FINISHED", None
    if isinstance(exc, KeyboardInterrupt | Terminated):
        return "KILLED", None
    return "FAILED", describe_error(exc)


def create_run(
    store: TrackingStore,
    experiment: str = "default",
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> Run:
    """Insert a RUNNING run (heartbeat = start time) in `store` and return it live, tracked by the lifecycle.

    One write transaction (the run row, its params and tags); the experiment id is cached per store and the git
    commit is looked up only inside a git checkout.
    """
    from roost import workspace

    params = check_params(params or {})  # before anything is written: a bad name or value leaves no run behind
    str_tags = check_tags(tags or {})
    eid = store.get_or_create_experiment(experiment)
    run_id = uuid.uuid4().hex
    commit, dirty = _git_info(Path.cwd())
    if store.remote:
        root = ""  # the server sets the artifact root (its proxy URI comes back in row["artifact_uri"])
    else:
        ws = workspace.current()
        root = ws.artifacts if "://" in ws.artifacts else "file://" + ws.artifacts
    now = utcnow()
    row: RunDict = {
        "id": run_id,
        "experiment_id": eid,
        "name": name,
        "status": "RUNNING",
        "start_time": now,
        "end_time": None,
        "heartbeat_at": now,
        "user": _user(),
        "git_commit": commit,
        "git_dirty": dirty,
        "source": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "parent_run_id": parent_run_id,
        "artifact_uri": f"{root.rstrip('/')}/{eid}/{run_id}/artifacts",
    }
    store.insert_run(row, params, str_tags)
    info: RunDict = {"run_id": run_id, "name": name, "experiment": experiment}
    info.update((k, v) for k, v in row.items() if k not in ("id", "name"))
    info["params"] = {p["key"]: decode_param(p["value"], p["type"]) for p in param_rows(run_id, params)}
    info["metrics"] = {}
    info["tags"] = str_tags
    info["lifecycle_stage"] = "active"  # the column's default (registry.retention)
    return Run(store, info, staging=state_dir() / "staging" / run_id)


@functools.cache
def _user() -> str | None:
    """The OS user name, or None when it cannot be told (e.g. a container without a passwd entry); once a process."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return None


def attach_run(run_id: str, store: TrackingStore | None = None) -> Run:
    """This process logs to run `run_id` that another process opened: it becomes the active run.

    Ending it (or process exit) only flushes and detaches; the owning process sets the final status.
    """
    found = runs.find(run_id)
    if found is not None:
        return found
    st = store or default_store()
    run = Run(st, st.get_run(run_id), owner=False)
    runs.push(run)
    return run


def local_artifact(run: RunDict | str, path: str = "") -> Path:
    """A local path of artifact `path` (file or folder) of a run (its dict or id), for code that needs files.

    Local roots: the file itself. Remote roots (s3://, …): the staged copy while the run stages (or after a failed
    upload), else a copy downloaded once under .roost/cache/runs/RUN_ID/artifacts/ (NotFoundError when absent).
    """
    if isinstance(run, str):
        run = default_store().get_run(run)
    uri = artifacts.safe_join(run["artifact_uri"], path)
    if artifacts.is_local(uri):
        found = artifacts.local_path(uri)
        artifacts.check_inside(run["artifact_uri"], found)  # a symlink in the run's folder must not lead out of it
        return found
    staging = staging_dir(run["run_id"])
    if staging.exists():
        return Path(artifacts.safe_join(str(staging), path))
    rel = Path(artifacts.safe_join(str(staging), path)).relative_to(staging)
    return artifacts.fetch(uri, state_dir() / "cache" / "runs" / run["run_id"] / "artifacts" / rel)
