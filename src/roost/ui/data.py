"""Read-side queries the UI needs beyond the public API: counted, paged run tables and side-by-side views."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from roost.registry.columns import Column, choose_columns, nest_runs
from roost.registry.models import Experiment, LatestMetric, Metric, Param, Run, Tag
from roost.registry.store import Store, aware, decode_param, default_store
from roost.ui import runs_query as rq

MAX_KEY_COLUMNS = 30
MAX_PER_PAGE = 500
MAX_CHILDREN = 1000  # nested runs fetched under one page of parents
NEST_DEPTH = 3


@dataclass
class RunsPage:
    """One page of the runs table: the runs, the total count and the param/metric columns."""

    runs: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    param_keys: list[str] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    more_columns: list[Column] = field(default_factory=list)
    rows: list[tuple[dict[str, Any], int, int]] = field(default_factory=list)
    nested: int = 0
    total_exact: bool = True  # False: `total` is at least (cap) or about (approx) how many runs match
    total_approx: bool = False  # `total` is an estimate from the newest runs (runs_query.capped_count)

    @property
    def groups(self) -> list[tuple[str, int]]:
        """(label, span) of consecutive columns of one kind, for the header's group row."""
        out: list[tuple[str, int]] = []
        for c in self.columns:
            label = c.kind + "s"
            if out and out[-1][0] == label:
                out[-1] = (label, out[-1][1] + 1)
            else:
                out.append((label, 1))
        return out

    @property
    def pages(self) -> int:
        """Number of pages (at least 1; when the count is capped, the pages known to exist)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.page < self.pages or (not self.total_exact and len(self.runs) == self.per_page)

    @property
    def total_text(self) -> str:
        """The count as shown: '1,234', '~6,700' (estimated) or '10,000+' (capped)."""
        return str(rq.Count(self.total, self.total_exact, self.total_approx))


def experiment_names(store: Store | None = None) -> list[str]:
    """Every experiment's name, oldest first (no run counts: those read every run)."""
    st = store or default_store()
    with st.read() as s:
        return list(s.scalars(select(Experiment.name).order_by(Experiment.id)))


def experiments_with_counts(store: Store | None = None) -> list[dict[str, Any]]:
    """Every experiment with its active runs counted as the runs page counts (exact up to 10,000 runs, else
    estimated or "10,000+"): store.list_experiments counts every run, seconds at a million."""
    st = store or default_store()
    with st.engine.connect() as conn:
        rows = conn.execute(select(Experiment.id, Experiment.name, Experiment.created_at).order_by(Experiment.id))
        out = []
        for eid, name, created in rows.all():
            n = rq.capped_count(conn, [Run.lifecycle_stage == "active"], experiment_ids=[eid])
            out.append({"id": eid, "name": name, "created_at": aware(created), "runs": str(n), "count": n})
    return out


def _stages(archived: bool) -> list[str]:
    """The lifecycle stages the runs page lists: active runs, and archived ones when asked (deleted never)."""
    return ["active", "archived"] if archived else ["active"]


def _experiment_ids(store: Store, names: list[str]) -> list[int]:
    """Ids of the named experiments; an unknown name is a NotFoundError with a suggestion."""
    with store.read() as s:
        known = dict(s.execute(select(Experiment.name, Experiment.id)).all())
    out = []
    for n in names:
        if n not in known:
            near = closest(n, list(known))
            raise NotFoundError(
                f"experiment {n!r} not found", hint=f"did you mean {near!r}?" if near else "see the experiments page"
            )
        out.append(known[n])
    return out


def count_runs(
    filter: str | None = None,
    experiments: list[str] | None = None,
    store: Store | None = None,
    cap: int | None = rq.COUNT_CAP,
    archived: bool = False,
    window: int | None = rq.COUNT_WINDOW,
) -> rq.Count:
    """How many runs match a filter, as the runs page shows it (runs_query.capped_count: exact up to `cap` when the
    scope fits in `window` runs, else estimated from the newest `window`, "10,000+" beyond the cap).

    cap=None counts every match exactly (reads them all: seconds for a common condition at a million runs).
    """
    from roost.registry import query

    st = store or default_store()
    conds: list[ColumnElement[bool]] = []
    eids = _experiment_ids(st, experiments) if experiments else None
    if eids:
        conds.append(Run.experiment_id.in_(eids))
    with st.read() as s:
        bounded = False
        if filter and filter.strip():
            where, bounded = query.plan_filter_bounded(filter, s.connection())
            conds.append(where)
        if cap is not None:
            scoped = [Run.lifecycle_stage.in_(_stages(archived)), *conds]
            return rq.capped_count(s.connection(), scoped, cap, None if bounded else window, eids)
        q = select(func.count()).select_from(Run).where(*conds)
        if archived:
            return rq.Count(int(s.execute(q.where(Run.lifecycle_stage.in_(_stages(True)))).scalar() or 0))
        return rq.Count(_visible_count(s.connection(), q))


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


def column_keys(experiments: list[str] | None = None, store: Store | None = None) -> tuple[list[str], list[str]]:
    """Distinct param and metric keys of the runs in scope (capped), for the table's columns."""
    st = store or default_store()
    eids = _experiment_ids(st, experiments) if experiments else None
    out = []
    with st.engine.connect() as conn:
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
            out.append(sorted(keys)[:MAX_KEY_COLUMNS])
    return out[0], out[1]


def _page_dicts(conn: Connection, rows: Sequence[RowMapping]) -> list[dict[str, Any]]:
    """Run dicts (the shape of roost.search_runs) for rows of the runs table, in three IN-queries."""
    exp_names = dict(conn.execute(select(Experiment.__table__.c.id, Experiment.__table__.c.name)).all())
    out: dict[str, dict[str, Any]] = {}
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


def runs_page(
    filter: str | None = None,
    experiments: list[str] | None = None,
    order_by: str | None = None,
    page: int = 1,
    per_page: int = 50,
    store: Store | None = None,
    nest: bool = False,
    archived: bool = False,
) -> RunsPage:
    """One page of matching runs, paged in SQL, with the count (exact up to COUNT_CAP) and the columns to show.

    With `nest`, pages hold top-level runs only and each brings its nested runs (trials, candidates, tasks).
    With `archived`, archived runs are listed too (deleted runs never are).
    """
    from roost.registry import query

    st = store or default_store()
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    page = max(1, int(page))
    where, bounded = None, False
    if filter and filter.strip():  # each condition in its quick form; bounded: a count of every match is cheap
        with st.engine.connect() as conn:
            where, bounded = query.plan_filter_bounded(filter, conn)
    eids = _experiment_ids(st, experiments) if experiments else None
    runs_t = Run.__table__
    stages = _stages(archived)
    conds: list[ColumnElement[bool]] = [runs_t.c.lifecycle_stage.in_(stages)]
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
    segments = rq.sort_segments(page_q, order_by) or [query.apply_order(page_q, order_by)]
    with st.engine.connect() as conn:
        rows = rq.read_page(conn, segments, per_page, (page - 1) * per_page)
        if rows and len(rows) < per_page or page == 1 and not rows:  # the last page: the count is known
            count = rq.Count((page - 1) * per_page + len(rows))
        else:
            count = rq.capped_count(conn, conds, window=None if bounded else rq.COUNT_WINDOW, experiment_ids=eids)
            if not rows and count.exact:  # past the end: the last page instead
                page = max(1, math.ceil(count.n / per_page))
                rows = rq.read_page(conn, segments, per_page, (page - 1) * per_page)
            seen = (page - 1) * per_page + len(rows)
            if not count.exact and count.n < seen:  # an estimate below what the pages hold: say "at least"
                count = rq.Count(seen, exact=False)
        runs = _page_dicts(conn, rows)
        kids: list[dict[str, Any]] = []
        level = [r["run_id"] for r in runs]
        # with statistics, most runs having no parent made SQLite's average rows per parent value huge, so it
        # walked (or scanned) every run instead of the parent index: tell it the parents are rare (likelihood)
        sqlite = conn.dialect.name == "sqlite"
        for _ in range(NEST_DEPTH if nest else 0):
            if not level or len(kids) >= MAX_CHILDREN:
                break
            of_level = runs_t.c.parent_run_id.in_(level)
            rare = func.likelihood(of_level, literal_column("0.000001")) if sqlite else of_level
            q = select(*runs_t.c).where(rare, runs_t.c.lifecycle_stage.in_(stages))
            q = q.order_by(runs_t.c.start_time, runs_t.c.id).limit(MAX_CHILDREN - len(kids))
            found = _page_dicts(conn, list(conn.execute(q).mappings()))
            kids += found
            level = [r["run_id"] for r in found]
    pkeys, mkeys = column_keys(experiments, st)
    everything = runs + kids
    shown = choose_columns(everything)
    every = [Column("metric", k) for k in sorted({k for r in everything for k in r["metrics"]})]
    every += [Column("param", k) for k in sorted({k for r in everything for k in r["params"]})]
    more = [c for c in every if c not in shown][: 2 * MAX_KEY_COLUMNS]
    return RunsPage(
        runs,
        count.n,
        page,
        per_page,
        pkeys,
        mkeys,
        shown,
        more,
        nest_runs(everything),
        len(kids),
        total_exact=count.exact,
        total_approx=count.approx,
    )


def metric_series(run_id: str, max_points: int = 2000, store: Store | None = None) -> dict[str, dict[str, list[Any]]]:
    """Every metric of a run as {key: {"steps": [...], "values": [...]}}, evenly thinned to max_points."""
    st = store or default_store()
    with st.read() as s:
        rows = s.execute(
            select(Metric.key, Metric.step, Metric.value)
            .where(Metric.run_id == run_id)
            .order_by(Metric.key, Metric.step, Metric.timestamp, Metric.id)
        ).all()
    out: dict[str, dict[str, list[Any]]] = {}
    for key, step, value in rows:
        d = out.setdefault(key, {"steps": [], "values": []})
        d["steps"].append(step)
        d["values"].append(value if math.isfinite(value) else None)
    for d in out.values():
        n = len(d["steps"])
        if n > max_points > 1:
            idx = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
            d["steps"] = [d["steps"][i] for i in idx]
            d["values"] = [d["values"][i] for i in idx]
    return out


def diff_rows(runs: list[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    """Rows of one section (params/metrics/tags) across runs: key, per-run values, and whether they differ."""
    keys = sorted({k for r in runs for k in r[section]})
    rows = []
    for k in keys:
        vals = [r[section].get(k) for r in runs]
        shown = [repr(v) if isinstance(v, float) else v for v in vals]
        rows.append({"key": k, "values": vals, "differs": len({str(v) for v in shown}) > 1})
    return rows


def runs_by_ids(ids: list[str], store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Full run dicts for the given (full) ids, keyed by id; unknown ids are left out."""
    st = store or default_store()
    ids = [i for i in dict.fromkeys(ids) if i]
    if not ids:
        return {}
    with st.read() as s:
        rows = list(s.scalars(select(Run).where(Run.id.in_(ids))))
        return {d["run_id"]: d for d in st.run_dicts(s, rows)}


def model_view(name: str, store: Store | None = None) -> dict[str, Any]:
    """A model's versions with aliases, producing runs and metrics side by side, plus its alias history."""
    from roost.registry import modelreg

    st = store or default_store()
    versions = [v.to_dict() for v in modelreg.list_versions(st, name)]
    runs = runs_by_ids([v["run_id"] for v in versions if v["run_id"]], st)
    for v in versions:
        run = runs.get(v["run_id"] or "")
        v["run"] = run
        meta_metrics = (v.get("meta") or {}).get("metrics") or {}
        v["metrics"] = {k: x for k, x in meta_metrics.items() if isinstance(x, (int, float))} or (
            dict(run["metrics"]) if run else {}
        )
    mkeys = sorted({k for v in versions for k in v["metrics"]})
    return {"name": name, "versions": versions, "metric_keys": mkeys, "alias_history": modelreg.alias_history(st, name)}


def feature_views(store: Store | None = None) -> dict[str, dict[str, Any]]:
    """Feature view specs registered by the feature store ({} when there are none)."""
    st = store or default_store()
    return st.list_objects("feature_view")
