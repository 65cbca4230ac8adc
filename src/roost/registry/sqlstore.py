"""The SQL implementation of roost.registry.interface.TrackingStore: the Store (runs, metrics, objects) plus thin
methods over the model registry (modelreg) and retention, so client code calls one interface for either backend."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from roost.registry import modelreg, retention
from roost.registry.store import Store, open_store


class SqlStore(Store):
    """A Store with the registry, retention and search-notice operations of the TrackingStore interface.

    It adds methods only (no state), so the per-process cached Store of a URL can become one (store.open_store).
    """

    # -- runs ---------------------------------------------------------------------------------------------
    def delete_tags(self, run_id: str, keys: list[str]) -> None:
        """Remove tags `keys` of run `run_id` (absent ones are ignored)."""
        from sqlalchemy import delete

        from roost.registry.tables import Tag

        if keys:
            with self.write() as s:
                s.execute(delete(Tag).where(Tag.run_id == run_id, Tag.key.in_(list(keys))))

    def filter_notices(
        self, filter: str | None, experiment: str | list[str] | None = None, seen: Iterable[dict[str, Any]] = ()
    ) -> list[str]:
        """One line per params/metrics/tags key a filter names that no run in the searched experiments has.

        seen: runs of those experiments already read (a search's answer): a key one of them has is known without
        a query."""
        from sqlalchemy import select

        from roost.registry import query
        from roost.registry.tables import Experiment, LatestMetric, Param, Tag
        from roost.registry.tables import Run as RunRow

        refs = query.filter_keys(filter) if filter and filter.strip() else []
        field = {"param": "params", "metric": "metrics", "tag": "tags"}
        for run in seen:
            refs = [(scope, key) for scope, key in refs if key not in run[field[scope]]]
            if not refs:
                break
        if not refs:
            return []
        names = [experiment] if isinstance(experiment, str) else list(experiment or [])
        tables: dict[str, type[Param] | type[LatestMetric] | type[Tag]] = {
            "param": Param,
            "metric": LatestMetric,
            "tag": Tag,
        }
        notes = []
        with self.read() as s:
            for scope, key in refs:
                t = tables[scope]
                q = select(t.key).distinct()
                if names:
                    q = q.join(RunRow, RunRow.id == t.run_id).join(Experiment, Experiment.id == RunRow.experiment_id)
                    q = q.where(Experiment.name.in_(names))
                if s.scalar(q.where(t.key == key).limit(1)) is None:
                    notes.append(query.unknown_key_notice(scope, key, list(s.scalars(q.limit(5000)))))
        return notes

    def experiment_id(self, name: str) -> int | None:
        """The id of experiment `name`, or None (nothing created)."""
        from sqlalchemy import select

        from roost.registry.tables import Experiment

        with self.read() as s:
            found = s.scalar(select(Experiment.id).where(Experiment.name == name))
        return None if found is None else int(found)

    def experiments_of(self, run_ids: Iterable[str]) -> dict[str, str]:
        """run id → experiment name, for the (full) ids that exist."""
        from sqlalchemy import select

        from roost.registry.tables import Experiment
        from roost.registry.tables import Run as RunRow

        ids = list(dict.fromkeys(run_ids))
        out: dict[str, str] = {}
        with self.read() as s:
            for i in range(0, len(ids), 500):
                q = select(RunRow.id, Experiment.name).join(Experiment, Experiment.id == RunRow.experiment_id)
                out.update((str(r), str(n)) for r, n in s.execute(q.where(RunRow.id.in_(ids[i : i + 500]))).all())
        return out

    # -- model registry -----------------------------------------------------------------------------------
    def register_model(self, name: str, source: str, run_id: str | None) -> modelreg.ModelVersionInfo:
        """Create the next version of model `name` from the package at `source`."""
        return modelreg.register(self, name, source, run_id)

    def set_alias(self, name: str, version: int, alias: str, user: str | None = None) -> bool:
        """Point name@alias at `version` (the move recorded as `user`'s); False when it already points there."""
        return modelreg.set_alias(self, name, version, alias, user)

    def delete_alias(self, name: str, alias: str, user: str | None = None) -> None:
        """Remove name@alias."""
        modelreg.delete_alias(self, name, alias, user)

    def get_version(self, name: str, version: int) -> modelreg.ModelVersionInfo:
        """One version of a model."""
        return modelreg.get_version(self, name, version)

    def list_models(self) -> list[dict[str, Any]]:
        """Registered models with latest version and aliases."""
        return modelreg.list_models(self)

    def models_marker(self) -> tuple[int, int, int, int]:
        """A cheap marker that changes with any version registered or alias moved (modelreg.change_marker)."""
        return modelreg.change_marker(self)

    def list_versions(self, name: str) -> list[modelreg.ModelVersionInfo]:
        """Versions of a model, oldest first."""
        return modelreg.list_versions(self, name)

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of a model, oldest first."""
        return modelreg.alias_history(self, name)

    def lookup_version(self, uri: str) -> modelreg.ModelVersionInfo:
        """'name@alias' | 'name/3' | 'name' → its version (nothing downloaded)."""
        return modelreg.lookup(self, uri)

    def resolve(self, uri: str, cache_root: Path | None = None) -> modelreg.ModelVersionInfo:
        """'name@alias' | 'name/3' | 'name' → its version with a local package path."""
        return modelreg.resolve(self, uri, cache_root)

    # -- retention ----------------------------------------------------------------------------------------
    def change_stage(
        self,
        action: str,
        run_ids: Iterable[str] | None = None,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        older_than: Any = None,
        dry_run: bool = False,
        force: bool = False,
        progress: retention.Progress | None = None,
    ) -> retention.StageChange:
        """Delete (soft), archive or restore matching runs."""
        return retention.change_stage(self, action, run_ids, filter, experiment, older_than, dry_run, force, progress)

    def gc(
        self,
        older_than: Any = None,
        dry_run: bool = False,
        batch_size: int = retention.GC_BATCH,
        vacuum: bool = False,
        progress: retention.Progress | None = None,
    ) -> retention.GcReport:
        """Permanently remove deleted runs (older than `older_than`) with their artifacts."""
        return retention.gc(self, older_than, dry_run, batch_size, vacuum, progress)


def sql_store(url: str, create: bool = True) -> SqlStore:
    """The (cached, per process) SQL store for `url` as a SqlStore."""
    st = open_store(url, create, cls=SqlStore)
    assert isinstance(st, SqlStore)
    return st
