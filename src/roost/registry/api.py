"""Python tracking and registry API: roost.start_run, log_metric, search_runs, register_model, resolve_model."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from roost import artifacts, workspace
from roost.errors import NotFoundError, RoostError
from roost.registry import deferred, modelreg, retention
from roost.registry.backend import default_store
from roost.registry.interface import TrackingStore
from roost.registry.lifecycle import FLUSH_INTERVAL_S, runs
from roost.registry.run import (
    STAGED_TAG,
    STATUSES,
    Run,
    RunDict,
    attach_run,
    check_tags,
    create_run,
    local_artifact,
    staging_dir,
)
from roost.registry.store import open_store

log = logging.getLogger(__name__)


def init(directory: Path | str | None = None) -> workspace.Workspace:
    """Create (or re-open, idempotently) a workspace in `directory` (default: cwd) and migrate its registry store."""
    ws = workspace.create(directory)
    open_store(ws.store_url, create=True)
    return ws


def start_run(
    experiment: str = "default",
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    parent_run_id: str | None = None,
    store: TrackingStore | None = None,
) -> Run:
    """Start a run (use as a context manager: exception → FAILED, Ctrl-C/SIGTERM → KILLED, else FINISHED)."""
    return create_run(store or default_store(), experiment, name, params, tags, parent_run_id)


def upload_staged(run_id: str) -> list[str]:
    """Upload the artifacts a run left in its staging folder (its upload at end failed), then remove the folder.

    Returns the artifact paths uploaded.
    """
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
    st.delete_tags(run["run_id"], [STAGED_TAG])
    shutil.rmtree(root, ignore_errors=True)
    return sent


def active_run() -> Run | None:
    """The innermost run opened with `with roost.start_run()` (or attached by the notebook kernel), or None."""
    return runs.active()


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
    warn_unknown: bool = True,
    stages: Iterable[str] = ("active",),
) -> list[RunDict]:
    """Runs matching a filter (see registry.filter_sql), newest first unless ordered (active runs unless `stages`)."""
    limit, offset = _page(limit, offset)
    deferred.wait()  # this process's background logging (autolog) lands before the runs are read
    found = default_store().search_runs(filter, experiment, order_by, limit, offset, stages=stages)
    for note in filter_notices(filter, experiment) if warn_unknown else []:
        log.warning("%s", note)
    return found


def _page(limit: int | None, offset: int) -> tuple[int | None, int]:
    """A checked (limit, offset): negative values are refused; a limit past what the database counts means all."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise RoostError(f"{name} {value!r} must be a whole number, 0 or more", hint=f"e.g. {name}=50")
    big = 2**62  # SQLite and PostgreSQL take 64-bit LIMIT/OFFSET
    if offset > big:
        raise RoostError(f"offset {offset} is past any store", hint="use an offset below the number of runs")
    return (None if limit is not None and limit > big else limit), offset


def filter_notices(filter: str | None, experiment: str | list[str] | None = None) -> list[str]:
    """One line per params/metrics/tags key a filter names that no run in the searched experiments has."""
    return default_store().filter_notices(filter, experiment)


def get_run(run_id: str) -> RunDict:
    """A run as a dict (params, latest metrics, tags, status, artifact_uri...)."""
    deferred.wait()
    return default_store().get_run(run_id)


def metric_history(run_id: str, key: str | None = None) -> list[dict[str, Any]]:
    """Every logged point of a run's metrics."""
    deferred.wait()
    return default_store().metric_history(default_store().get_run(run_id)["run_id"], key)


def tag_run(run_id: str, tags: dict[str, Any], delete: list[str] | None = None) -> RunDict:
    """Set (or delete) tags on any run, finished or not, by id or unique id prefix; returns the updated run."""
    st = default_store()
    full = st.get_run(run_id)["run_id"]
    if tags:
        st.log_batch(full, tags=check_tags(tags))
    if delete:
        st.delete_tags(full, list(delete))
    return st.get_run(full)


def delete_run(run_id: str, force: bool = False) -> None:
    """Soft-delete one run, as `delete_runs` and MLflow's `delete_run` do: hidden, restorable until `gc`.

    Rows and artifacts stay until `gc()` removes them (the only hard delete); `restore_runs([run_id])` undoes it.
    A RUNNING run, or one a model version was registered from, needs `force=True` (see `delete_runs`)."""
    change = delete_runs([run_id], force=force)
    if change.skipped_running:
        raise RoostError(
            f"run {change.skipped_running[0][:8]} is RUNNING: not deleted", hint="end it first, or pass force=True"
        )


def list_experiments() -> list[dict[str, Any]]:
    """Experiments with run counts."""
    return default_store().list_experiments()


def register_model(run_id: str | None, name: str, path: str = "model") -> modelreg.ModelVersionInfo:
    """Register the package at artifact `path` of `run_id` (or a local folder when run_id is None)."""
    st = default_store()
    if run_id is None and st.remote:  # the server cannot read this machine's folder: upload it in a run
        return register_model(_package_run(name, Path(path).resolve()), name, "model")
    if run_id is None:
        p = Path(path).resolve()
        v = st.register_model(name, "file://" + str(p), None)
    else:
        run = st.get_run(run_id)
        deferred.wait(run["run_id"])  # a model autolog is still packaging in the background
        live = runs.find(run["run_id"])
        if live is not None and not live.ended:  # a remote run still open: send what its staging folder holds
            live.sync(path)
        source = artifacts.safe_join(run["artifact_uri"], path)
        if artifacts.is_local(source):  # a symlink in the run's folder must not register a package outside it
            artifacts.check_inside(run["artifact_uri"], source)
        v = st.register_model(name, source, run["run_id"])
    return resolve_model(f"{v.name}/{v.version}")


def _package_run(name: str, folder: Path) -> str:
    """A finished run of experiment `models/NAME` holding `folder` as its `model` artifact (uploaded through the
    server's artifact proxy); its id."""
    if not (folder / "roost-model.yaml").is_file():
        what = "does not exist" if not folder.exists() else "holds no roost-model.yaml (not a model package)"
        raise RoostError(f"cannot register {folder}: it {what}", hint="give the folder of a roost model package")
    with start_run(f"models/{name}", name=f"register {name}", tags={"roost.registered_from": str(folder)}) as run:
        run.log_artifacts(folder, "model")
    return run.id


def set_alias(name: str, version: int, alias: str) -> bool:
    """Point name@alias at a version; False (no move recorded) when it already points there."""
    return default_store().set_alias(name, version, alias)


def resolve_model(uri: str) -> modelreg.ModelVersionInfo:
    """'name@alias' | 'name/3' | 'name' → version record with a local package path."""
    from roost.registry.places import state_dir

    return default_store().resolve(uri, state_dir() / "cache")


def list_models() -> list[dict[str, Any]]:
    """Registered models."""
    return default_store().list_models()


def models_marker() -> tuple[int, ...] | None:
    """A cheap marker of the registry's versions and aliases (changes when either does); None where the store
    has no cheap one (a roost server: re-read list_models instead)."""
    marker = getattr(default_store(), "models_marker", None)
    return tuple(marker()) if marker is not None else None


def list_versions(name: str) -> list[modelreg.ModelVersionInfo]:
    """Versions of a model."""
    return default_store().list_versions(name)


def iter_runs(filter: str | None = None, page: int = 1000) -> Iterator[RunDict]:
    """Stream all matching runs, newest first, a keyset page at a time (runs added meanwhile are not repeated)."""
    after = None
    deferred.wait()
    while True:
        batch = default_store().search_runs(filter, limit=page, after=after)
        yield from batch
        if len(batch) < page:
            return
        after = (batch[-1]["start_time"], batch[-1]["run_id"])


def delete_runs(
    run_ids: Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: retention.Progress | None = None,
) -> retention.StageChange:
    """Soft-delete matching runs (hidden, restorable until `gc`); RUNNING runs and model sources need force."""
    return default_store().change_stage("delete", run_ids, filter, experiment, older_than, dry_run, force, progress)


def archive_runs(
    run_ids: Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: retention.Progress | None = None,
) -> retention.StageChange:
    """Archive matching runs: kept as they are, hidden from default listings (stages=("active", "archived") shows)."""
    return default_store().change_stage("archive", run_ids, filter, experiment, older_than, dry_run, force, progress)


def restore_runs(
    run_ids: Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    progress: retention.Progress | None = None,
) -> retention.StageChange:
    """Bring deleted (not yet garbage-collected) or archived runs back to the default listings."""
    return default_store().change_stage("restore", run_ids, filter, experiment, older_than, dry_run, False, progress)


def gc(
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    batch_size: int = retention.GC_BATCH,
    vacuum: bool = False,
    progress: retention.Progress | None = None,
) -> retention.GcReport:
    """Permanently remove runs deleted longer than `older_than` ago (default: all) with their artifacts."""
    return default_store().gc(older_than, dry_run, batch_size, vacuum, progress)


__all__ = [
    "Run",
    "init",
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
    "delete_runs",
    "archive_runs",
    "restore_runs",
    "gc",
    "list_experiments",
    "register_model",
    "set_alias",
    "resolve_model",
    "list_models",
    "list_versions",
    "metric_history",
    "upload_staged",
    "local_artifact",
    "attach_run",
    "staging_dir",
    "FLUSH_INTERVAL_S",
    "STATUSES",
    "STAGED_TAG",
]
