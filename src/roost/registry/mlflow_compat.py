"""Reads and writes the MLflow REST API of the team server needs beyond Store and modelreg (roost.server.mlflow):
experiments by id, latest metric points with their steps, registered models with descriptions, version search."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from roost.errors import ConflictError, NotFoundError
from roost.registry import modelreg
from roost.registry.store import Store, aware, utcnow
from roost.registry.tables import Alias, Experiment, LatestMetric, ModelVersion, RegisteredModel, Run, Tag

Point = tuple[str, float, int, float]  # (key, value, step, unix seconds)


def experiment(store: Store, id: int | None = None, name: str | None = None) -> dict[str, Any] | None:
    """The experiment with this id (or name) as {id, name, created_at}, or None."""
    with store.read() as s:
        q = select(Experiment.id, Experiment.name, Experiment.created_at)
        row = s.execute(q.where(Experiment.id == id) if id is not None else q.where(Experiment.name == name)).first()
    return None if row is None else {"id": int(row[0]), "name": row[1], "created_at": aware(row[2])}


def run_head(store: Store, run_id: str) -> dict[str, Any] | None:
    """What a write to a run needs to know, in one read: {run_id, experiment_id, experiment (its name), status,
    lifecycle_stage, artifact_uri}; None when there is no run with exactly this id."""
    with store.read() as s:
        row = s.execute(
            select(Run.id, Run.experiment_id, Experiment.name, Run.status, Run.lifecycle_stage, Run.artifact_uri)
            .join(Experiment, Experiment.id == Run.experiment_id)
            .where(Run.id == run_id)
        ).first()
    if row is None:
        return None
    keys = ("run_id", "experiment_id", "experiment", "status", "lifecycle_stage", "artifact_uri")
    return dict(zip(keys, row, strict=True))


def create_experiment(store: Store, name: str) -> int:
    """Create experiment `name` and return its id; ConflictError when it exists."""
    try:
        with store.write() as s:
            if s.scalar(select(Experiment.id).where(Experiment.name == name)) is not None:
                raise ConflictError(f"experiment {name!r} already exists", hint="use it, or pick another name")
            e = Experiment(name=name, created_at=utcnow())
            s.add(e)
            s.flush()
            return int(e.id)
    except IntegrityError:  # created meanwhile by another process
        raise ConflictError(f"experiment {name!r} already exists", hint="use it, or pick another name") from None


def latest_points(store: Store, run_ids: list[str]) -> dict[str, list[Point]]:
    """Each run's latest metric points (key, value, step, timestamp), by run id."""
    out: dict[str, list[Point]] = {r: [] for r in run_ids}
    with store.read() as s:
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i : i + 500]
            for m in s.scalars(select(LatestMetric).where(LatestMetric.run_id.in_(chunk)).order_by(LatestMetric.key)):
                out[m.run_id].append((m.key, m.value, m.step, m.timestamp))
    return out


def delete_tag(store: Store, run_id: str, key: str) -> bool:
    """Remove tag `key` of a run; whether it was there."""
    with store.write() as s:
        done = cast(CursorResult[Any], s.execute(delete(Tag).where(Tag.run_id == run_id, Tag.key == key)))
        return bool(done.rowcount)


def registered_model(store: Store, name: str) -> dict[str, Any] | None:
    """{name, description, created_at, latest_version, aliases {alias: version}} of a registered model, or None."""
    with store.read() as s:
        m = s.get(RegisteredModel, name)
        if m is None:
            return None
        latest = s.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.name == name))
        aliases = {a.alias: a.version for a in s.scalars(select(Alias).where(Alias.name == name))}
        return {
            "name": m.name,
            "description": m.description,
            "created_at": aware(m.created_at),
            "latest_version": latest,
            "aliases": aliases,
        }


def model_names(store: Store) -> list[str]:
    """Every registered model's name, sorted."""
    with store.read() as s:
        return list(s.scalars(select(RegisteredModel.name).order_by(RegisteredModel.name)))


def create_registered_model(store: Store, name: str, description: str | None = None) -> None:
    """Create an empty registered model; ConflictError when it exists."""
    modelreg._check_name(name, "model name")
    try:
        with store.write() as s:
            if s.get(RegisteredModel, name) is not None:
                raise ConflictError(f"registered model {name!r} already exists", hint="pick another name")
            s.add(RegisteredModel(name=name, description=description, created_at=utcnow()))
    except IntegrityError:
        raise ConflictError(f"registered model {name!r} already exists", hint="pick another name") from None


def set_description(store: Store, name: str, description: str | None) -> None:
    """Set a registered model's description."""
    with store.write() as s:
        q = update(RegisteredModel).where(RegisteredModel.name == name).values(description=description)
        done = cast(CursorResult[Any], s.execute(q))
        if not done.rowcount:
            raise NotFoundError(f"registered model {name!r} not found", hint="see `roost models list`")


def delete_registered_model(store: Store, name: str) -> None:
    """Remove a registered model, its versions and aliases (the runs and their artifacts stay)."""
    with store.write() as s:
        if s.get(RegisteredModel, name) is None:
            raise NotFoundError(f"registered model {name!r} not found", hint="see `roost models list`")
        s.execute(delete(Alias).where(Alias.name == name))
        s.execute(delete(ModelVersion).where(ModelVersion.name == name))
        s.execute(delete(RegisteredModel).where(RegisteredModel.name == name))


def delete_version(store: Store, name: str, version: int) -> None:
    """Remove one model version and the aliases pointing at it."""
    with store.write() as s:
        if s.get(ModelVersion, (name, version)) is None:
            raise NotFoundError(f"model {name!r} has no version {version}", hint=f"see `roost models versions {name}`")
        s.execute(delete(Alias).where(Alias.name == name, Alias.version == version))
        s.execute(delete(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))


def versions(
    store: Store, names: list[str] | None = None, run_ids: list[str] | None = None
) -> list[modelreg.ModelVersionInfo]:
    """Model versions (of `names` and/or from `run_ids` when given), by name then version, with their aliases."""
    with store.read() as s:
        q = select(ModelVersion)
        if names is not None:
            q = q.where(ModelVersion.name.in_(names))
        if run_ids is not None:
            q = q.where(ModelVersion.run_id.in_(run_ids))
        rows = list(s.scalars(q.order_by(ModelVersion.name, ModelVersion.version)))
        wanted = sorted({r.name for r in rows})
        aliases: dict[tuple[str, int], list[str]] = {}
        for a in s.scalars(select(Alias).where(Alias.name.in_(wanted)).order_by(Alias.alias)):
            aliases.setdefault((a.name, a.version), []).append(a.alias)
        return [
            modelreg.ModelVersionInfo(
                r.name, r.version, r.run_id, r.source, aware(r.created_at), aliases.get((r.name, r.version), [])
            )
            for r in rows
        ]
