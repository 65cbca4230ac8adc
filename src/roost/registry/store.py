"""The repository store: one class over SQLAlchemy that every backend (SQLite, PostgreSQL) shares."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, case, delete, exists, func, null, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from roost import workspace
from roost.errors import ConflictError, NotFoundError, RoostError, closest
from roost.registry import engine as eng
from roost.registry.hotpath import HotPath
from roost.registry.pages import pg_page, run_dict
from roost.registry.tables import (
    Base,
    Experiment,
    LatestMetric,
    Metric,
    Param,
    Run,
    StoredObject,
    Tag,
)
from roost.registry.values import HEARTBEAT_TIMEOUT_S as HEARTBEAT_TIMEOUT_S
from roost.registry.values import MAX_TIMEOUT_S, heartbeat_timeout_s, param_values
from roost.registry.values import aware as aware
from roost.registry.values import decode_param as decode_param
from roost.registry.values import param_rows as param_rows
from roost.registry.values import typed_param as typed_param
from roost.registry.values import utcnow as utcnow

log = logging.getLogger(__name__)

RunDict = dict[str, Any]
MetricPoint = tuple[str, float, int, float]

_stores: dict[str, Store] = {}
_lock = threading.Lock()


IDEMPOTENCY_KEEP = timedelta(days=7)  # a client retries a batch within minutes; keys older than this are pruned
IDEMPOTENCY_PRUNE_EVERY = 1000  # keyed writes between two prunes (per process)


class Store:
    """Repository operations on one database URL (the SQL side; registry ops: roost.registry.sqlstore.SqlStore)."""

    remote = False  # a SQL store, not a server client (roost.registry.interface.TrackingStore)

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = eng.make_engine(url)
        self._next_reap = 0.0  # monotonic time of the next stale-run scan on reads (see reap)
        self._hot = HotPath(self.engine)  # the run hot path's statements, straight to the driver
        self._experiment_ids: dict[str, int] = {}  # name -> id; experiments are never renamed or deleted
        self._keys_claimed = 0  # idempotency keys recorded by this process (old ones pruned now and then)

    # -- schema -----------------------------------------------------------------------------------------
    def ensure_schema(self, create: bool = True) -> None:
        """Migrate to head when the schema is missing or old (create=False: raise instead)."""
        rev = eng.current_revision(self.engine)
        if rev == eng.HEAD_REVISION:
            return
        if not create and rev is None:
            raise RoostError(f"the store {self.url} has no roost schema", hint="run `roost init`")
        eng.migrate(self.engine)

    def write(self, durable: bool = True) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (`durable=False`: run tracking, see engine.write_connection)."""
        return eng.write_session(self.engine, durable)

    def read(self) -> contextlib.AbstractContextManager[Session]:
        """A read transaction."""
        return eng.read_session(self.engine)

    # -- experiments -------------------------------------------------------------------------------------
    def get_or_create_experiment(self, name: str) -> int:
        """The id of experiment `name`, created if missing (cached: a run start needs no lookup)."""
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        eid = self._experiment_id(name)
        self._experiment_ids[name] = eid
        return eid

    def _experiment_id(self, name: str) -> int:
        with self.read() as s:
            eid = s.scalar(select(Experiment.id).where(Experiment.name == name))
        if eid is not None:
            return int(eid)
        try:
            with self.write() as s:
                eid = s.scalar(select(Experiment.id).where(Experiment.name == name))
                if eid is None:
                    e = Experiment(name=name, created_at=utcnow())
                    s.add(e)
                    s.flush()
                    eid = e.id
                return int(eid)
        except IntegrityError:  # another process created it first (PostgreSQL has no BEGIN IMMEDIATE)
            with self.read() as s:
                return int(s.scalars(select(Experiment.id).where(Experiment.name == name)).one())

    def experiment_name(self, experiment_id: int) -> str | None:
        """The name of experiment `experiment_id` (None when absent); cached, as experiments are never renamed."""
        for name, eid in self._experiment_ids.items():
            if eid == experiment_id:
                return name
        with self.read() as s:
            found = s.scalar(select(Experiment.name).where(Experiment.id == experiment_id))
        if found is not None:
            self._experiment_ids[found] = experiment_id
        return found

    def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment with its run count."""
        with self.read() as s:
            rows = s.execute(
                select(Experiment.id, Experiment.name, Experiment.created_at, func.count(Run.id))
                .outerjoin(Run, (Run.experiment_id == Experiment.id) & (Run.lifecycle_stage == "active"))
                .group_by(Experiment.id)
                .order_by(Experiment.id)
            ).all()
        return [{"id": r[0], "name": r[1], "created_at": aware(r[2]), "runs": r[3]} for r in rows]

    # -- runs --------------------------------------------------------------------------------------------
    def create_run(self, run: Run) -> None:
        """Insert a new run row."""
        with self.write() as s:
            s.add(run)

    def insert_run(self, row: dict[str, Any], params: dict[str, Any], tags: dict[str, str]) -> None:
        """Insert a new run (column values of `runs`) with its params and tags in one transaction."""
        hp = self._hot
        try:
            with eng.write_connection(self.engine, durable=False) as conn, hp.cursor(conn) as cur:
                cur.execute(hp.insert_run_sql, hp.run_values(row))
                if params:
                    cur.executemany(hp.param_sql, [param_values(row["id"], k, v) for k, v in params.items()])
                if tags:
                    cur.executemany(hp.tag_sql, [(row["id"], k, v) for k, v in tags.items()])
        except IntegrityError:
            self._experiment_ids.clear()  # e.g. the database was replaced under a cached experiment id
            raise

    def bulk_insert(
        self,
        runs: list[dict[str, Any]],
        params: Iterable[tuple[str, str, Any]] = (),
        tags: Iterable[tuple[str, str, str]] = (),
        metrics: Iterable[tuple[str, str, float, int, float]] = (),
    ) -> None:
        """Insert finished runs in one transaction: rows of `runs`, (run_id, key, value) params and tags, and
        (run_id, key, value, step, timestamp) metric points (the latest per run and key derived here).

        For imports and benchmarks: thousands of runs a transaction, no per-run checks (new run ids only).
        """
        hp = self._hot
        points = list(metrics)
        latest: dict[tuple[str, str], tuple[str, str, float, int, float]] = {}
        for p in points:
            cur_p = latest.get((p[0], p[1]))
            if cur_p is None or (p[3], p[4]) >= (cur_p[3], cur_p[4]):
                latest[(p[0], p[1])] = p
        with eng.write_connection(self.engine) as conn, hp.cursor(conn) as cur:
            cur.executemany(hp.insert_run_sql, [hp.run_values(r) for r in runs])
            cur.executemany(hp.param_sql, [param_values(rid, k, v) for rid, k, v in params])
            cur.executemany(hp.tag_sql, [(rid, k, str(v)) for rid, k, v in tags])
            hp.insert_metrics(cur, points)
            cur.executemany(hp.latest_sql, list(latest.values()))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run."""
        with self.write(durable=False) as s:
            r = s.get(Run, run_id)
            if r is None:
                raise NotFoundError(f"run {run_id!r} not found", hint="list runs with `roost runs list`")
            for k, v in fields.items():
                setattr(r, k, v)
            if "start_time" in fields:  # params keep a copy (models.Param.run_start)
                s.execute(update(Param).where(Param.run_id == run_id).values(run_start=fields["start_time"]))

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
        """Write params, tags and metric points (key, value, step, ts) in one transaction (with the heartbeat).

        finish=(status, end_time) also closes the run in the same transaction (NotFoundError if it is gone).
        idempotency_key: recorded in the same transaction first; a key already recorded means the batch was
        applied before (a client's retry) and nothing is written.
        """
        metrics = list(metrics)
        hp = self._hot
        with eng.write_connection(self.engine, durable=False) as conn, hp.cursor(conn) as cur:
            if idempotency_key is not None and not self._claim_key(cur, idempotency_key):
                return
            if heartbeat and finish is None:  # a finishing run's last heartbeat rides in the finish update
                cur.execute(hp.beat_sql, (hp.time(utcnow()), run_id))
            if params:
                keys = [str(k) for k in params]
                cur.execute(hp.params_of_sql(len(keys)), (run_id, *keys))
                existing = {k: (v, t) for k, v, t in cur.fetchall()}
                new = []
                for k, v in params.items():
                    text, typ, num = typed_param(v)
                    old = existing.get(str(k))
                    if old is None:
                        new.append((run_id, str(k), text, typ, num, run_id))
                    elif old != (text, typ):
                        raise ConflictError(
                            f"param {k!r} of run {run_id} is already {decode_param(*old)!r}; cannot change it to {v!r}",
                            hint="params are immutable; log a new key or a new run",
                        )
                if new:
                    cur.executemany(hp.param_sql, new)
            if tags:
                cur.executemany(hp.tag_sql, [(run_id, str(k), str(v)) for k, v in tags.items()])
            if metrics:
                rows = [(run_id, k, float(v), int(st), float(ts)) for k, v, st, ts in metrics]
                hp.insert_metrics(cur, rows)
                latest: dict[str, tuple[str, str, float, int, float]] = {}
                for r in rows:
                    cur_row = latest.get(r[1])
                    if cur_row is None or (r[3], r[4]) >= (cur_row[3], cur_row[4]):
                        latest[r[1]] = r
                cur.executemany(hp.latest_sql, list(latest.values()))
            if finish is not None:
                status, end = finish
                if heartbeat:
                    done = cur.execute(hp.finish_beat_sql, (status, hp.time(end), hp.time(utcnow()), run_id))
                else:
                    done = cur.execute(hp.finish_sql, (status, hp.time(end), run_id))
                if not done:
                    raise NotFoundError(f"run {run_id!r} not found", hint="list runs with `roost runs list`")

    def _claim_key(self, cur: Any, key: str) -> bool:
        """Record an idempotency key in the current transaction; False when it was recorded before."""
        hp = self._hot
        now = utcnow()
        if not cur.execute(hp.idem_sql, (key, hp.time(now))):
            return False
        self._keys_claimed += 1
        if self._keys_claimed % IDEMPOTENCY_PRUNE_EVERY == 1:  # now and then: forget keys older than a week
            cur.execute(hp.idem_prune_sql, (hp.time(now - IDEMPOTENCY_KEEP),))
        return True

    def get_run(self, run_id: str) -> RunDict:
        """A run with params, latest metrics and tags, as a dict (stale RUNNING runs are marked LOST first)."""
        self.reap()
        with self.read() as s:
            r = s.get(Run, run_id)
            if r is None:
                from roost.registry.prefix import resolve_run_id  # an ambiguous prefix lists its candidates

                r = s.get(Run, resolve_run_id(s, run_id))
            assert r is not None
            return self.run_dicts(s, [r])[0]

    def run_dicts(self, s: Session, runs: list[Run]) -> list[RunDict]:
        """Full run dicts for `runs` (rows read in session `s`), with three IN-queries (no per-run round trips)."""
        ids = [r.id for r in runs]
        out: dict[str, RunDict] = {}
        exp_names = dict(s.execute(select(Experiment.id, Experiment.name)).all())
        for r in runs:
            out[r.id] = run_dict(r, exp_names.get(r.experiment_id), {}, {}, {})
        p, lm, t = _PARAMS.c, _LATEST.c, _TAGS.c
        for match in _id_matches(s, ids):  # plain rows, not ORM objects: most of a big search's time went there
            for run_id, key, value, typ in s.execute(select(p.run_id, p.key, p.value, p.type).where(match(p.run_id))):
                out[run_id]["params"][key] = decode_param(value, typ)
            for run_id, key, value in s.execute(select(lm.run_id, lm.key, lm.value).where(match(lm.run_id))):
                out[run_id]["metrics"][key] = value
            for run_id, key, value in s.execute(select(t.run_id, t.key, t.value).where(match(t.run_id))):
                out[run_id]["tags"][key] = value
        return [out[i] for i in ids]

    def runs_by_ids(self, ids: Iterable[str], reap: bool = True) -> dict[str, RunDict]:
        """Full run dicts for the given (full) ids, keyed by id; unknown ids are left out (reap=False: a pure read,
        stale RUNNING runs are not marked LOST first)."""
        wanted = [i for i in dict.fromkeys(ids) if i]
        if not wanted:
            return {}
        if reap:
            self.reap()
        out: dict[str, RunDict] = {}
        with self.read() as s:
            for chunk in _chunks(wanted, 500):
                rows = list(s.scalars(select(Run).where(Run.id.in_(chunk))))
                out.update((d["run_id"], d) for d in self.run_dicts(s, rows))
        return out

    # -- liveness ----------------------------------------------------------------------------------------
    def heartbeat(self, run_ids: list[str]) -> None:
        """Record that the runs' process is alive (a LOST run that beats again is RUNNING again)."""
        if run_ids:
            with eng.write_connection(self.engine, durable=False) as conn:
                conn.execute(_BEAT, {"ids": list(run_ids), "beat_at": utcnow()})

    def mark_lost(self, timeout_s: float | None = None) -> list[str]:
        """Mark RUNNING runs whose heartbeat is older than `timeout_s` (default: heartbeat_timeout_s()) as LOST.

        Their end_time becomes the last heartbeat. Returns the ids marked.
        """
        timeout = heartbeat_timeout_s() if timeout_s is None else timeout_s
        if not 0 < timeout <= MAX_TIMEOUT_S:
            raise RoostError(f"heartbeat timeout {timeout} s must be positive and finite", hint="e.g. --timeout 300")
        cutoff = utcnow() - timedelta(seconds=timeout)
        stale = (Run.status == "RUNNING") & (func.coalesce(Run.heartbeat_at, Run.start_time) < cutoff)
        with self.read() as s:
            ids = list(s.scalars(select(Run.id).where(stale)))
        if not ids:
            return []
        with self.write() as s:  # check again under the write lock: a heartbeat may have come in between
            ids = list(s.scalars(select(Run.id).where(stale, Run.id.in_(ids))))
            if ids:
                s.execute(
                    update(Run)
                    .where(Run.id.in_(ids))
                    .values(status="LOST", end_time=func.coalesce(Run.heartbeat_at, Run.start_time))
                    .execution_options(synchronize_session=False)
                )
        if ids:
            log.warning("marked %d run(s) LOST: no heartbeat for %.0f s (%s)", len(ids), timeout, ", ".join(ids))
        return ids

    def reap(self) -> None:
        """On reads: mark stale runs LOST, at most every min(5 s, timeout/10) per store."""
        now = time.monotonic()
        if now < self._next_reap:
            return
        timeout = heartbeat_timeout_s()
        self._next_reap = now + min(5.0, timeout / 10)
        self.mark_lost(timeout)

    def metric_history(self, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
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
        after: tuple[datetime, str] | None = None,
        stages: Iterable[str] = ("active",),
    ) -> list[RunDict]:
        """Runs matching a filter expression, ordered, as dicts (stale RUNNING runs are marked LOST first).

        stages: the lifecycle stages listed (registry.retention): active runs by default, not archived or deleted.

        after=(start_time, run_id) of the last run of a page (default order only): the runs that follow it, a
        keyset page that neither skips nor repeats runs when others are added meanwhile.
        """
        self.reap()
        q = select(Run).where(Run.lifecycle_stage.in_(list(stages)))
        names = [experiment] if isinstance(experiment, str) else list(experiment or [])
        if names:
            q = q.join(Experiment, Experiment.id == Run.experiment_id).where(Experiment.name.in_(names))
        try:
            found = self._search(q, filter, order_by, limit, offset, after)
        except RoostError:
            self._need_experiments(names)  # an unknown experiment is the error named first, as it was
            raise
        if names and not {r["experiment"] for r in found} >= set(names):  # only then can one be unknown
            self._need_experiments(names)
        return found

    def _need_experiments(self, names: list[str]) -> None:
        """NotFoundError (with the closest name) for the first of `names` that is no experiment."""
        with self.read() as s:
            known = set(s.scalars(select(Experiment.name)))
        for n in names:
            if n not in known:
                near = closest(n, known)
                raise NotFoundError(
                    f"experiment {n!r} not found",
                    hint=f"did you mean {near!r}?" if near else "see `roost experiments list`",
                )

    def _search(
        self,
        q: Select[Run],
        filter: str | None,
        order_by: str | list[str] | None,
        limit: int | None,
        offset: int,
        after: tuple[datetime, str] | None,
    ) -> list[RunDict]:
        """search_runs' page of `q` (runs of the searched experiments and stages), as run dicts."""
        from roost.registry import query

        with self.read() as s:
            if filter and filter.strip():
                q = q.where(query.plan_filter(filter, s.connection(), every=limit is None and not offset))
            if after is not None:
                if order_by:
                    raise RoostError("keyset paging (after=...) follows the default order", hint="leave order_by unset")
                started, last_id = after  # one index range on start_time, then the ties after last_id
                q = q.where(Run.start_time <= started, (Run.start_time < started) | (Run.id > last_id))
            by_metric = query.single_metric_order(order_by)
            if by_metric is not None:
                runs = _by_metric(s, q, *by_metric, limit, offset)
            else:
                q = query.apply_order(q, order_by)
                if limit is not None:
                    q = q.limit(limit)
                if offset:
                    q = q.offset(offset)
                if s.get_bind().dialect.name == "postgresql":
                    return pg_page(s, q)
                runs = list(s.scalars(q).all())
            return self.run_dicts(s, runs)

    def delete_run(self, run_id: str) -> None:
        """Delete a run and everything logged to it."""
        full = self.get_run(run_id)["run_id"]
        with self.write() as s:
            for model in (Metric, LatestMetric, Param, Tag):
                s.execute(delete(model).where(model.run_id == full))
            s.execute(delete(Run).where(Run.id == full))

    # -- objects -----------------------------------------------------------------------------------------
    def put_object(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Insert or replace a named JSON object."""
        with self.write() as s:
            s.merge(StoredObject(kind=kind, name=name, spec=spec, updated_at=utcnow()))

    def update_object(
        self, kind: str, name: str, change: Callable[[dict[str, Any] | None], dict[str, Any]]
    ) -> dict[str, Any]:
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

    def get_object(self, kind: str, name: str) -> dict[str, Any] | None:
        """A named JSON object or None."""
        with self.read() as s:
            o = s.get(StoredObject, (kind, name))
            return None if o is None else o.spec

    def list_objects(self, kind: str) -> dict[str, dict[str, Any]]:
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


def _by_metric(s: Session, q: Select[Any], key: str, desc: bool, limit: int | None, offset: int) -> list[Run]:
    """The runs of `q` ordered by metric `key` as apply_order orders them (runs without it last), in two reads.

    First the runs that have the metric, walking its (key, value) index in order and stopping at the page's end;
    only when that runs out, the runs without it (newest first). One outer-joined query would sort every run.
    """
    m = aliased(LatestMetric)
    want = None if limit is None else offset + limit
    first = q.join(m, (m.run_id + "" == Run.id) & (m.key == key))  # latest_metrics leads (paging.leads)
    first = first.order_by(m.value.desc() if desc else m.value.asc(), Run.start_time.desc(), Run.id)
    having = list(s.scalars(first.limit(want) if want is not None else first).all())
    out = having[offset:]
    if want is None or len(having) < want:
        m2 = aliased(LatestMetric)
        rest = q.where(~exists(select(m2.run_id).where(m2.run_id == Run.id, m2.key == key)))
        rest = rest.order_by(Run.start_time.desc(), Run.id).offset(max(0, offset - len(having)))
        if limit is not None:
            rest = rest.limit(limit - len(out))
        out += s.scalars(rest).all()
    return out


def _chunks(xs: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def _id_matches(s: Session, ids: list[str]) -> Iterator[Callable[[Any], Any]]:
    """Conditions `column matches some of ids`, as few as the database allows: on PostgreSQL one `= ANY(array)`
    (one parameter: an IN list of 2,000 parameters cost psycopg more to convert and send than the query cost
    PostgreSQL), on SQLite IN lists of at most 500 (its parameter limit)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy import String, any_
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam("ids", ids, type_=ARRAY(String()))
        yield lambda column: column == any_(array)
        return
    for chunk in _chunks(ids, 500):
        yield functools.partial(_in, values=chunk)


def _in(column: Any, values: list[str]) -> Any:
    return column.in_(values)


_RUNS = Base.metadata.tables[Run.__tablename__]
_PARAMS, _LATEST, _TAGS = (Base.metadata.tables[t.__tablename__] for t in (Param, LatestMetric, Tag))
_REVIVED = _RUNS.c.status == "LOST"
# the heartbeat of open runs (a LOST run that beats again becomes RUNNING, its end_time cleared)
_BEAT = (
    update(_RUNS)
    .where(_RUNS.c.id.in_(bindparam("ids", expanding=True)), _RUNS.c.status.in_(("RUNNING", "LOST")))
    .values(
        heartbeat_at=bindparam("beat_at"),
        status=case((_REVIVED, "RUNNING"), else_=_RUNS.c.status),
        end_time=case((_REVIVED, null()), else_=_RUNS.c.end_time),
    )
)


def open_store(url: str, create: bool = True, cls: type[Store] = Store) -> Store:
    """The (cached, per process) SQL store for `url`, migrated to the current schema.

    cls: a subclass that only adds methods (roost.registry.sqlstore.SqlStore); the cached store becomes one.
    """
    if url.startswith(("http://", "https://")):
        raise RoostError(
            f"{url} is a roost server, not a database: this needs direct store access",
            hint="use roost.registry.backend.open_store for a server client, or run it on the server host",
        )
    with _lock:
        st = _stores.get(url)
        if st is None:
            st = cls(url)
            st.ensure_schema(create=create)
            _stores[url] = st
        elif not isinstance(st, cls):
            st.__class__ = cls  # same state, more methods (cls adds no attributes)
        return st


def default_store(what: str = "this command") -> Store:
    """The SQL store of the current workspace (RoostError naming `what` when the workspace is a server client)."""
    from roost.registry import credentials

    server = credentials.server_url()
    if server is not None:
        raise RoostError(
            f"{what} needs direct store access, and this client talks to the roost server {server}",
            hint="run it on the server host (with ROOST_STORE_URL), or unset ROOST_SERVER / `roost logout`",
        )
    return open_store(workspace.current().store_url)


def reset_default() -> None:
    """Forget cached stores (after switching workspace)."""
    with _lock:
        for st in _stores.values():
            st.engine.dispose()
        _stores.clear()


workspace.on_switch(reset_default)
atexit.register(reset_default)  # closing the pooled connections lets SQLite refresh its statistics (PRAGMA optimize)
