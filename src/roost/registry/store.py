"""The repository store: one class over SQLAlchemy that every backend (SQLite, PostgreSQL) shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from roost.errors import ConflictError, NotFoundError, RoostError, closest
from roost.registry import engine as eng
from roost.registry.models import (
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    StoredObject,
    Tag,
)

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """Return `dt` as timezone-aware UTC (SQLite hands back naive UTC)."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def typed_param(value: Any) -> tuple[str, str, float | None]:
    """Encode a param value as (text, type, numeric view)."""
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool", float(value)
    if isinstance(value, int):
        return str(value), "int", float(value)
    if isinstance(value, float):
        return repr(value), "float", value
    if value is None:
        return "None", "str", None
    return str(value), "str", None


def decode_param(text: str, typ: str) -> Any:
    """Decode a stored param into its Python type."""
    if typ == "int":
        return int(text)
    if typ == "float":
        return float(text)
    if typ == "bool":
        return text == "true"
    return text


class Store:
    """Repository operations on one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = eng.make_engine(url)

    # -- schema -----------------------------------------------------------------------------------------
    def ensure_schema(self, create: bool = True) -> None:
        """Migrate to head when the schema is missing or old (create=False: raise instead)."""
        rev = eng.current_revision(self.engine)
        if rev == eng.HEAD_REVISION:
            return
        if not create and rev is None:
            raise RoostError(f"the store {self.url} has no roost schema", hint="run `roost init`")
        eng.migrate(self.engine)

    def write(self):  # noqa: ANN201
        """A write transaction."""
        return eng.write_session(self.engine)

    def read(self):  # noqa: ANN201
        """A read transaction."""
        return eng.read_session(self.engine)

    # -- experiments -------------------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> int:
        """The id of experiment `name`, created if missing."""
        with self.read() as s:
            eid = s.scalar(select(Experiment.id).where(Experiment.name == name))
        if eid is not None:
            return eid
        try:
            with self.write() as s:
                eid = s.scalar(select(Experiment.id).where(Experiment.name == name))
                if eid is None:
                    e = Experiment(name=name, created_at=utcnow())
                    s.add(e)
                    s.flush()
                    eid = e.id
                return eid
        except IntegrityError:  # another process created it first (PostgreSQL has no BEGIN IMMEDIATE)
            with self.read() as s:
                return s.scalar(select(Experiment.id).where(Experiment.name == name))

    def list_experiments(self) -> list[dict]:
        """Every experiment with its run count."""
        with self.read() as s:
            rows = s.execute(
                select(Experiment.id, Experiment.name, Experiment.created_at, func.count(Run.id))
                .outerjoin(Run, Run.experiment_id == Experiment.id)
                .group_by(Experiment.id)
                .order_by(Experiment.id)
            ).all()
        return [{"id": r[0], "name": r[1], "created_at": aware(r[2]), "runs": r[3]} for r in rows]

    # -- runs --------------------------------------------------------------------------------------------
    def create_run(self, run: Run) -> None:
        """Insert a new run row."""
        with self.write() as s:
            s.add(run)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run."""
        with self.write() as s:
            r = s.get(Run, run_id)
            if r is None:
                raise NotFoundError(f"run {run_id!r} not found", hint="list runs with `roost runs list`")
            for k, v in fields.items():
                setattr(r, k, v)

    def log_batch(
        self,
        run_id: str,
        params: dict | None = None,
        tags: dict | None = None,
        metrics: Iterable[tuple[str, float, int, float]] = (),
    ) -> None:
        """Write params, tags and metric points (key, value, step, ts) in one transaction."""
        metrics = list(metrics)
        with self.write() as s:
            if params:
                existing = {
                    p.key: p
                    for p in s.scalars(select(Param).where(Param.run_id == run_id, Param.key.in_(list(params))))
                }
                for k, v in params.items():
                    text, typ, num = typed_param(v)
                    if k in existing:
                        old = existing[k]
                        if (old.value, old.type) != (text, typ):
                            raise ConflictError(
                                f"param {k!r} of run {run_id} is already {decode_param(old.value, old.type)!r}; "
                                f"cannot change it to {v!r}",
                                hint="params are immutable; log a new key or a new run",
                            )
                        continue
                    s.add(Param(run_id=run_id, key=str(k), value=text, type=typ, num=num))
            if tags:
                for k, v in tags.items():
                    s.merge(Tag(run_id=run_id, key=str(k), value=str(v)))
            if metrics:
                s.execute(
                    Metric.__table__.insert(),
                    [
                        {"run_id": run_id, "key": k, "value": float(v), "step": int(st), "timestamp": float(ts)}
                        for k, v, st, ts in metrics
                    ],
                )
                latest: dict[str, tuple] = {}
                for k, v, st, ts in metrics:
                    cur = latest.get(k)
                    if cur is None or (st, ts) >= (cur[1], cur[2]):
                        latest[k] = (float(v), int(st), float(ts))
                self._upsert_latest(s, run_id, latest)

    def _upsert_latest(self, s, run_id: str, latest: dict[str, tuple]) -> None:  # noqa: ANN001
        """Keep latest_metrics at the value with the greatest (step, timestamp)."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        t = LatestMetric.__table__
        stmt = insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.run_id, t.c.key],
            set_={"value": stmt.excluded.value, "step": stmt.excluded.step, "timestamp": stmt.excluded.timestamp},
            where=(stmt.excluded.step > t.c.step)
            | ((stmt.excluded.step == t.c.step) & (stmt.excluded.timestamp >= t.c.timestamp)),
        )
        s.execute(
            stmt,
            [
                {"run_id": run_id, "key": k, "value": v, "step": st, "timestamp": ts}
                for k, (v, st, ts) in latest.items()
            ],
        )

    def get_run(self, run_id: str) -> dict:
        """A run with params, latest metrics and tags, as a dict."""
        with self.read() as s:
            r = s.get(Run, run_id)
            if r is None:
                ids = s.scalars(select(Run.id).where(Run.id.like(f"{run_id}%")).limit(2)).all() if run_id else []
                if len(ids) == 1:
                    r = s.get(Run, ids[0])
                else:
                    raise NotFoundError(f"run {run_id!r} not found", hint="list runs with `roost runs list`")
            return self._run_dicts(s, [r])[0]

    def _run_dicts(self, s, runs: list[Run]) -> list[dict]:  # noqa: ANN001
        """Assemble full run dicts for `runs` with three IN-queries (no per-run round trips)."""
        ids = [r.id for r in runs]
        out: dict[str, dict] = {}
        exp_names = dict(s.execute(select(Experiment.id, Experiment.name)).all())
        for r in runs:
            out[r.id] = {
                "run_id": r.id,
                "name": r.name,
                "experiment": exp_names.get(r.experiment_id),
                "experiment_id": r.experiment_id,
                "status": r.status,
                "start_time": aware(r.start_time),
                "end_time": aware(r.end_time),
                "user": r.user,
                "git_commit": r.git_commit,
                "git_dirty": r.git_dirty,
                "source": r.source,
                "parent_run_id": r.parent_run_id,
                "artifact_uri": r.artifact_uri,
                "params": {},
                "metrics": {},
                "tags": {},
            }
        for chunk in _chunks(ids, 500):
            for p in s.scalars(select(Param).where(Param.run_id.in_(chunk))):
                out[p.run_id]["params"][p.key] = decode_param(p.value, p.type)
            for m in s.scalars(select(LatestMetric).where(LatestMetric.run_id.in_(chunk))):
                out[m.run_id]["metrics"][m.key] = m.value
            for t in s.scalars(select(Tag).where(Tag.run_id.in_(chunk))):
                out[t.run_id]["tags"][t.key] = t.value
        return [out[i] for i in ids]

    def metric_history(self, run_id: str, key: str | None = None) -> list[dict]:
        """Every logged point of a run's metrics (optionally one key), ordered by step."""
        with self.read() as s:
            q = select(Metric).where(Metric.run_id == run_id)
            if key is not None:
                q = q.where(Metric.key == key)
            rows = s.scalars(q.order_by(Metric.key, Metric.step, Metric.timestamp, Metric.id)).all()
        return [{"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp} for m in rows]

    def search_runs(
        self,
        filter: str | None = None,
        experiment: str | list[str] | None = None,
        order_by: str | list[str] | None = None,
        limit: int | None = 1000,
        offset: int = 0,
    ) -> list[dict]:
        """Runs matching a filter expression, ordered, as dicts."""
        from roost.registry import query

        q = select(Run)
        if experiment:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            with self.read() as s:
                known = set(s.scalars(select(Experiment.name)))
            for n in names:
                if n not in known:
                    near = closest(n, known)
                    raise NotFoundError(
                        f"experiment {n!r} not found",
                        hint=f"did you mean {near!r}?" if near else "see `roost experiments list`",
                    )
            q = q.join(Experiment, Experiment.id == Run.experiment_id).where(Experiment.name.in_(names))
        if filter and filter.strip():
            q = q.where(query.compile_filter(filter))
        q = query.apply_order(q, order_by)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self.read() as s:
            runs = s.scalars(q).all()
            return self._run_dicts(s, list(runs))

    def delete_run(self, run_id: str) -> None:
        """Delete a run and everything logged to it."""
        full = self.get_run(run_id)["run_id"]
        with self.write() as s:
            for model in (Metric, LatestMetric, Param, Tag):
                s.execute(delete(model).where(model.run_id == full))
            s.execute(delete(Run).where(Run.id == full))

    # -- objects -----------------------------------------------------------------------------------------
    def put_object(self, kind: str, name: str, spec: dict) -> None:
        """Insert or replace a named JSON object."""
        with self.write() as s:
            s.merge(StoredObject(kind=kind, name=name, spec=spec, updated_at=utcnow()))

    def update_object(self, kind: str, name: str, change: Callable[[dict | None], dict]) -> dict:
        """Read-modify-write a named object atomically: `change(current spec or None)` → the new spec.

        One write transaction (BEGIN IMMEDIATE on SQLite, the row locked FOR UPDATE on PostgreSQL), so two writers
        (e.g. two index builds taking the next version) never lose each other's change.
        """
        import copy

        for attempt in range(3):
            try:
                with self.write() as s:
                    o = s.scalars(
                        select(StoredObject)
                        .where(StoredObject.kind == kind, StoredObject.name == name)
                        .with_for_update()
                    ).one_or_none()
                    new = change(copy.deepcopy(o.spec) if o is not None else None)
                    if o is None:
                        s.add(StoredObject(kind=kind, name=name, spec=new, updated_at=utcnow()))
                    else:
                        o.spec, o.updated_at = new, utcnow()
                return new
            except IntegrityError:  # another writer created it first (PostgreSQL): change its version instead
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get_object(self, kind: str, name: str) -> dict | None:
        """A named JSON object or None."""
        with self.read() as s:
            o = s.get(StoredObject, (kind, name))
            return None if o is None else o.spec

    def list_objects(self, kind: str) -> dict[str, dict]:
        """All objects of a kind, by name."""
        with self.read() as s:
            return {
                o.name: o.spec
                for o in s.scalars(select(StoredObject).where(StoredObject.kind == kind).order_by(StoredObject.name))
            }

    def delete_object(self, kind: str, name: str) -> None:
        """Remove a named object (no error when absent)."""
        with self.write() as s:
            s.execute(delete(StoredObject).where(StoredObject.kind == kind, StoredObject.name == name))


def _chunks(xs: list, n: int) -> Iterable[list]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def open_store(url: str, create: bool = True) -> Store:
    """The (cached, per process) store for `url`, migrated to the current schema."""
    with _lock:
        st = _stores.get(url)
        if st is None:
            st = Store(url)
            st.ensure_schema(create=create)
            _stores[url] = st
        return st


def default_store() -> Store:
    """The store of the current workspace."""
    from roost import workspace

    return open_store(workspace.current().store_url)


def reset_default() -> None:
    """Forget cached stores (after switching workspace)."""
    with _lock:
        for st in _stores.values():
            st.engine.dispose()
        _stores.clear()
