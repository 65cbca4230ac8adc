"""Read functions over the runs tables for listings at scale (the UI's runs and experiments pages).

They own the SQL that pages, counts and lists runs (index walks and capped counts: registry.paging), so that no
module outside the registry queries its tables; a REST store answers the same functions over HTTP. Runs come as
the run dicts of roost.search_runs; counts as paging.Count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    RowMapping,
    Select,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from roost.errors import NotFoundError, closest
from roost.registry import engine as eng
from roost.registry import paging
from roost.registry.paging import Count
from roost.registry.store import RunDict, Store, aware, decode_param, default_store
from roost.registry.tables import Experiment, LatestMetric, Param, Run, Tag

__all__ = [
    "ExperimentRuns",
    "RunsSlice",
    "column_keys",
    "count_runs",
    "experiment_ids",
    "experiment_names",
    "experiments_with_counts",
    "run_history",
    "runs_slice",
]


@dataclass(frozen=True)
class ExperimentRuns:
    """An experiment and how many active runs it has (counted as the runs page counts)."""

    id: int
    name: str
    created_at: datetime | None
    runs: Count


@dataclass(frozen=True)
class RunsSlice:
    """One page of matching runs: the runs, their nested runs (when asked), the count and the page it is."""

    runs: list[RunDict]
    children: list[RunDict]
    count: Count
    page: int


def stages(archived: bool) -> list[str]:
    """The lifecycle stages a listing shows: active runs, and archived ones when asked (deleted never)."""
    return ["active", "archived"] if archived else ["active"]


def experiment_names(store: Store | None = None) -> list[str]:
    """Every experiment's name, oldest first (no run counts: those read every run)."""
    st = store or default_store()
    with st.read() as s:
        return list(s.scalars(select(Experiment.name).order_by(Experiment.id)))


def experiments_with_counts(store: Store | None = None) -> list[ExperimentRuns]:
    """Every experiment with its active runs counted by paging.capped_count (exact up to 10,000 runs, else
    estimated or "10,000+"): store.list_experiments counts every run, seconds at a million."""
    st = store or default_store()
    with eng.reader(st.engine).connect() as conn:
        rows = conn.execute(select(Experiment.id, Experiment.name, Experiment.created_at).order_by(Experiment.id))
        out = []
        for eid, name, created in rows.all():
            n = paging.capped_count(conn, [Run.lifecycle_stage == "active"], experiment_ids=[eid])
            out.append(ExperimentRuns(eid, name, aware(created), n))
    return out


def experiment_ids(
    names: Sequence[str], store: Store | None = None, where: str = "see the experiments page"
) -> list[int]:
    """Ids of the named experiments; an unknown name is a NotFoundError naming the closest one, else `where`."""
    st = store or default_store()
    with st.read() as s:
        known = dict(s.execute(select(Experiment.name, Experiment.id)).all())
    out = []
    for n in names:
        if n not in known:
            near = closest(n, list(known))
            raise NotFoundError(f"experiment {n!r} not found", hint=f"did you mean {near!r}?" if near else where)
        out.append(known[n])
    return out


def count_runs(
    filter: str | None = None,
    experiments: list[str] | None = None,
    store: Store | None = None,
    cap: int | None = paging.COUNT_CAP,
    archived: bool = False,
    window: int | None = paging.COUNT_WINDOW,
) -> Count:
    """How many runs match a filter (paging.capped_count: exact up to `cap` when the scope fits in `window` runs,
    else estimated from the newest `window`, "10,000+" beyond the cap); cap=None counts every match exactly."""
    from roost.registry import query

    st = store or default_store()
    conds: list[ColumnElement[bool]] = []
    eids = experiment_ids(experiments, st) if experiments else None
    if eids:
        conds.append(Run.experiment_id.in_(eids))
    with st.read() as s:
        bounded = False
        if filter and filter.strip():
            where, bounded = query.plan_filter_bounded(filter, s.connection())
            conds.append(where)
        if cap is not None:
            scoped = [Run.lifecycle_stage.in_(stages(archived)), *conds]
            return paging.capped_count(s.connection(), scoped, cap, None if bounded else window, eids)
        q = select(func.count()).select_from(Run).where(*conds)
        if archived:
            return Count(int(s.execute(q.where(Run.lifecycle_stage.in_(stages(True)))).scalar() or 0))
        return Count(_visible_count(s.connection(), q))


def _visible_count(conn: Connection, count_q: Select[Any]) -> int:
    """A COUNT select's result without archived/deleted runs: all matches minus hidden ones (hidden_at set).

    Both counts can read indexes only (ix_runs_hidden_at for the few hidden runs); a lifecycle_stage condition in
    the COUNT would read every row of runs.
    """
    every = int(conn.execute(count_q).scalar() or 0)
    return every - int(conn.execute(count_q.where(Run.hidden_at.is_not(None))).scalar() or 0)


def _distinct_keys(conn: Connection, table: FromClause) -> list[str]:
    """Distinct values of table.key by an index skip-scan (one probe per key, not one per row)."""
    k = table.c.key
    seed = select(func.min(k).label("key")).cte("keys", recursive=True)
    step = select(select(func.min(k)).where(k > seed.c.key).scalar_subquery()).where(seed.c.key.is_not(None))
    cte = seed.union_all(step)
    return [x for x in conn.execute(select(cte.c.key)).scalars() if x is not None]


def column_keys(
    experiments: list[str] | None = None, store: Store | None = None, limit: int = 30
) -> tuple[list[str], list[str]]:
    """Distinct param and metric keys of the runs in scope (the first `limit` of each, sorted)."""
    st = store or default_store()
    eids = experiment_ids(experiments, st) if experiments else None
    out = []
    with eng.reader(st.engine).connect() as conn:
        for model in (Param, LatestMetric):
            t = model.__table__
            keys = _distinct_keys(conn, t)
            if eids is not None:
                runs = Run.__table__
                keys = [
                    k
                    for k in keys
                    if conn.execute(
                        select(t.c.run_id)
                        .join(runs, runs.c.id == t.c.run_id)
                        .where(t.c.key == k, runs.c.experiment_id.in_(eids))
                        .limit(1)
                    ).first()
                    is not None
                ]
            out.append(sorted(keys)[:limit])
    return out[0], out[1]


def _page_dicts(conn: Connection, rows: Sequence[RowMapping]) -> list[RunDict]:
    """Run dicts (the shape of roost.search_runs) for rows of the runs table, in three IN-queries."""
    exp_names = dict(conn.execute(select(Experiment.__table__.c.id, Experiment.__table__.c.name)).all())
    out: dict[str, RunDict] = {}
    for r in rows:
        out[r["id"]] = {
            "run_id": r["id"],
            "name": r["name"],
            "experiment": exp_names.get(r["experiment_id"]),
            "experiment_id": r["experiment_id"],
            "status": r["status"],
            "start_time": aware(r["start_time"]),
            "end_time": aware(r["end_time"]),
            "user": r["user"],
            "git_commit": r["git_commit"],
            "git_dirty": r["git_dirty"],
            "source": r["source"],
            "parent_run_id": r["parent_run_id"],
            "artifact_uri": r["artifact_uri"],
            "lifecycle_stage": r["lifecycle_stage"],
            "params": {},
            "metrics": {},
            "tags": {},
        }
    if out:
        ids = list(out)
        p, m, t = Param.__table__, LatestMetric.__table__, Tag.__table__
        for rid, k, v, typ in conn.execute(select(p.c.run_id, p.c.key, p.c.value, p.c.type).where(p.c.run_id.in_(ids))):
            out[rid]["params"][k] = decode_param(v, typ)
        for rid, k, v in conn.execute(select(m.c.run_id, m.c.key, m.c.value).where(m.c.run_id.in_(ids))):
            out[rid]["metrics"][k] = v
        for rid, k, v in conn.execute(select(t.c.run_id, t.c.key, t.c.value).where(t.c.run_id.in_(ids))):
            out[rid]["tags"][k] = v
    return list(out.values())


def runs_slice(
    filter: str | None = None,
    experiments: list[str] | None = None,
    order_by: str | None = None,
    page: int = 1,
    per_page: int = 50,
    store: Store | None = None,
    nest: bool = False,
    archived: bool = False,
    max_children: int = 1000,
    depth: int = 3,
) -> RunsSlice:
    """One page of matching runs, paged in SQL, with the count (exact up to COUNT_CAP); past the end, the last page.

    With `nest`, pages hold top-level runs only and each brings its nested runs (up to `depth` levels, at most
    `max_children` in all). With `archived`, archived runs are listed too (deleted runs never are).
    """
    from roost.registry import query

    st = store or default_store()
    where, bounded = None, False
    if filter and filter.strip():  # each condition in its quick form; bounded: a count of every match is cheap
        with eng.reader(st.engine).connect() as conn:
            where, bounded = query.plan_filter_bounded(filter, conn)
    eids = experiment_ids(experiments, st) if experiments else None
    runs_t = Run.__table__
    shown = stages(archived)
    conds: list[ColumnElement[bool]] = [runs_t.c.lifecycle_stage.in_(shown)]
    conds += [runs_t.c.experiment_id.in_(eids)] if eids else []
    conds += [where] if where is not None else []
    if nest:  # top-level: no parent, or a parent that is gone (an anti-join; NOT IN would hash every run id)
        parents = aliased(Run)
        conds.append(
            or_(
                runs_t.c.parent_run_id.is_(None),
                ~exists(select(parents.id).where(parents.id == runs_t.c.parent_run_id)),
            )
        )
    page_q = select(*runs_t.c).where(*conds)
    segments = paging.sort_segments(page_q, order_by) or [query.apply_order(page_q, order_by)]
    with eng.reader(st.engine).connect() as conn:
        rows = paging.read_page(conn, segments, per_page, (page - 1) * per_page)
        if rows and len(rows) < per_page or page == 1 and not rows:  # the last page: the count is known
            count = Count((page - 1) * per_page + len(rows))
        else:
            count = paging.capped_count(
                conn, conds, window=None if bounded else paging.COUNT_WINDOW, experiment_ids=eids
            )
            if not rows and count.exact:  # past the end: the last page instead
                page = max(1, math.ceil(count.n / per_page))
                rows = paging.read_page(conn, segments, per_page, (page - 1) * per_page)
            seen = (page - 1) * per_page + len(rows)
            if not count.exact and count.n < seen:  # an estimate below what the pages hold: say "at least"
                count = Count(seen, exact=False)
        runs = _page_dicts(conn, rows)
        kids: list[RunDict] = []
        level = [r["run_id"] for r in runs]
        # with statistics, most runs having no parent made SQLite's average rows per parent value huge, so it
        # walked (or scanned) every run instead of the parent index: tell it the parents are rare (likelihood)
        sqlite = conn.dialect.name == "sqlite"
        for _ in range(depth if nest else 0):
            if not level or len(kids) >= max_children:
                break
            of_level = runs_t.c.parent_run_id.in_(level)
            rare = func.likelihood(of_level, literal_column("0.000001")) if sqlite else of_level
            q = select(*runs_t.c).where(rare, runs_t.c.lifecycle_stage.in_(shown))
            q = q.order_by(runs_t.c.start_time, runs_t.c.id).limit(max_children - len(kids))
            found = _page_dicts(conn, list(conn.execute(q).mappings()))
            kids += found
            level = [r["run_id"] for r in found]
    return RunsSlice(runs, kids, count, page)


def _prefixed(col: Any, prefixes: Sequence[str]) -> ColumnElement[bool]:
    """`col` starts with one of the prefixes (LIKE with % and _ escaped)."""
    esc = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in prefixes]
    return or_(*(col.like(e + "%", escape="\\") for e in esc))


def run_history(
    filter: str | None,
    experiments: Sequence[str],
    limit: int,
    metrics: Sequence[str] = (),
    params: Sequence[str] = (),
    store: Store | None = None,
    params_newest: int | None = None,
) -> list[RunDict]:
    """The newest `limit` active runs of the experiments matching a filter, oldest first, as run dicts holding all
    tags but only the metrics and params whose keys start with one of `metrics` / `params` (a history chart's
    series and thresholds: a bounded read however many keys each run logged); `params_newest`: params of the
    newest N runs only."""
    from roost.registry import query

    st = store or default_store()
    eids = experiment_ids(list(experiments), st)
    runs_t = Run.__table__
    with eng.reader(st.engine).connect() as conn:
        conds: list[ColumnElement[bool]] = [runs_t.c.lifecycle_stage == "active", runs_t.c.experiment_id.in_(eids)]
        if filter and filter.strip():
            conds.append(query.plan_filter(filter, conn))
        q = select(*runs_t.c).where(*conds).order_by(runs_t.c.start_time.desc(), runs_t.c.id.desc()).limit(limit)
        rows = list(conn.execute(q).mappings())
        names = dict(conn.execute(select(Experiment.__table__.c.id, Experiment.__table__.c.name)).all())
        out: dict[str, RunDict] = {
            r["id"]: {
                "run_id": r["id"],
                "name": r["name"],
                "experiment": names.get(r["experiment_id"]),
                "status": r["status"],
                "start_time": aware(r["start_time"]),
                "end_time": aware(r["end_time"]),
                "params": {},
                "metrics": {},
                "tags": {},
            }
            for r in reversed(rows)
        }
        if not out:
            return []
        ids = list(out)
        p, m, t = Param.__table__, LatestMetric.__table__, Tag.__table__
        for rid, k, v in conn.execute(select(t.c.run_id, t.c.key, t.c.value).where(t.c.run_id.in_(ids))):
            out[rid]["tags"][k] = v
        if metrics:
            mq = select(m.c.run_id, m.c.key, m.c.value).where(m.c.run_id.in_(ids), _prefixed(m.c.key, metrics))
            for rid, k, v in conn.execute(mq):
                out[rid]["metrics"][k] = v
        if params:
            pids = ids if params_newest is None else ids[len(ids) - params_newest :]
            pq = select(p.c.run_id, p.c.key, p.c.value, p.c.type).where(
                p.c.run_id.in_(pids), _prefixed(p.c.key, params)
            )
            for rid, k, v, typ in conn.execute(pq):
                out[rid]["params"][k] = decode_param(v, typ)
    return list(out.values())
