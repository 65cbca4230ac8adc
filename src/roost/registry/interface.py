"""The one store interface client code programs against: `TrackingStore`, with two implementations — the SQL
store (roost.registry.sqlstore.SqlStore, over SQLite/PostgreSQL) and the REST client (roost.registry.rest.RestStore,
over a `roost server`) — and its typed records."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, runtime_checkable

if TYPE_CHECKING:
    from roost.registry.modelreg import ModelVersionInfo
    from roost.registry.retention import GcReport, Progress, StageChange

MetricPoint = tuple[str, float, int, float]  # (key, value, step, unix timestamp)


class RunRecord(TypedDict):
    """A run as every store hands it out: its columns, params (typed), latest metrics and tags."""

    run_id: str
    name: str | None
    experiment: str | None
    experiment_id: int
    status: str
    start_time: datetime | None
    end_time: datetime | None
    user: str | None
    git_commit: str | None
    git_dirty: bool | None
    source: str | None
    parent_run_id: str | None
    artifact_uri: str
    heartbeat_at: datetime | None
    lifecycle_stage: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]


class ExperimentRecord(TypedDict):
    """An experiment with its number of active runs."""

    id: int
    name: str
    created_at: datetime | None
    runs: int


@runtime_checkable
class TrackingStore(Protocol):
    """What the Python API, the run lifecycle and the CLI need from a store, whatever its backend."""

    url: str
    remote: bool  # True: a server client (no SQL session; code that needs one says so)

    # experiments
    def get_or_create_experiment(self, name: str) -> int:
        """The id of experiment `name`, created if missing."""
        ...

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment with its run count (ExperimentRecord fields)."""
        ...

    # runs
    def insert_run(self, row: dict[str, Any], params: dict[str, Any], tags: dict[str, str]) -> None:
        """Insert a new run (`runs` column values); a server may set row['artifact_uri'] and row['user']."""
        ...

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (status, end_time, name)."""
        ...

    def log_batch(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        metrics: Iterable[MetricPoint] = (),
        heartbeat: bool = False,
        finish: tuple[str, datetime] | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Write params, tags and points in one transaction; a key already applied makes it a no-op."""
        ...

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run (RunRecord fields) by id or unique id prefix; NotFoundError when absent."""
        ...

    def runs_by_ids(self, ids: Iterable[str], reap: bool = True) -> dict[str, dict[str, Any]]:
        """Runs by full id (unknown ids left out)."""
        ...

    def heartbeat(self, run_ids: list[str]) -> None:
        """Record that the runs' process is alive."""
        ...

    def mark_lost(self, timeout_s: float | None = None) -> list[str]:
        """Mark RUNNING runs without a recent heartbeat LOST; returns their ids."""
        ...

    def search_runs(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = 1000,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
        stages: Iterable[str] = ("active",),
    ) -> list[dict[str, Any]]:
        """Runs matching a filter expression (keyset page with `after`)."""
        ...

    def metric_history(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
        """Every point of a run's metrics, ordered by key and step."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Delete a run and everything logged to it."""
        ...

    def delete_tags(self, run_id: str, keys: list[str]) -> None:
        """Remove tags of a run."""
        ...

    def filter_notices(self, filter: str | None, experiment: str | list[str] | None = None) -> list[str]:
        """One line per key a filter names that no run of the experiments has."""
        ...

    # stored objects
    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Insert or replace a named JSON object."""
        ...

    def get_object(self, kind: str, name: str) -> dict[str, Any] | None:
        """A named JSON object or None."""
        ...

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """All objects of a kind, by name."""
        ...

    def delete_object(self, kind: str, name: str) -> None:
        """Remove a named object (no error when absent)."""
        ...

    def update_object(
        self, kind: str, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-modify-write a named object atomically."""
        ...

    # model registry
    def register_model(self, name: str, source: str, run_id: str | None) -> ModelVersionInfo:
        """Create the next version of model `name` from the package at `source`."""
        ...

    def set_alias(self, name: str, version: int, alias: str) -> bool:
        """Point name@alias at `version`; False (no move recorded) when it already points there."""
        ...

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove name@alias."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersionInfo:
        """One version of a model."""
        ...

    def list_models(self) -> list[dict[str, Any]]:
        """Registered models with latest version and aliases."""
        ...

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """Versions of a model, oldest first."""
        ...

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of a model, oldest first."""
        ...

    def lookup_version(self, uri: str) -> ModelVersionInfo:
        """'name@alias' | 'name/3' | 'name' → the version record (no download)."""
        ...

    def resolve(self, uri: str, cache_root: Path | None = None) -> ModelVersionInfo:
        """Like lookup_version, with the package fetched to a local path (local_path)."""
        ...

    # retention
    def change_stage(
        self,
        action: str,
        run_ids: Iterable[str] | None = None,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        older_than: Any = None,
        dry_run: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> StageChange:
        """Delete (soft), archive or restore matching runs."""
        ...

    def gc(
        self,
        older_than: Any = None,
        dry_run: bool = False,
        batch_size: int = 100,
        vacuum: bool = False,
        progress: Progress | None = None,
    ) -> GcReport:
        """Permanently remove deleted runs with their artifacts."""
        ...
