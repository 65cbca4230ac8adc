"""Run records built from rows: one run's dict, and a PostgreSQL search page read in one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from roost.registry.tables import Base, Experiment, LatestMetric, Param, Run, Tag
from roost.registry.values import aware, decode_param

RunDict = dict[str, Any]
_RUNS = Base.metadata.tables[Run.__tablename__]
_PARAMS, _LATEST, _TAGS = (Base.metadata.tables[t.__tablename__] for t in (Param, LatestMetric, Tag))


def run_dict(
    r: Any, experiment: str | None, params: dict[str, Any], metrics: dict[str, float], tags: dict[str, Any]
) -> RunDict:
    """A run dict from a runs row (an ORM Run or a Core row: the same attribute names)."""
    return {
        "run_id": r.id,
        "name": r.name,
        "experiment": experiment,
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
        "heartbeat_at": aware(r.heartbeat_at),
        "lifecycle_stage": r.lifecycle_stage,
        "params": params,
        "metrics": metrics,
        "tags": tags,
    }


def pg_page(s: Session, q: Select[Run]) -> list[RunDict]:
    """A search page on PostgreSQL in one statement: each run's row with its experiment's name and its params,
    latest metrics and tags aggregated by PostgreSQL (json_object_agg, one primary-key range each), instead of the
    page and then four reads of its runs (run_dicts): one round trip, no ORM objects."""
    p, lm, t, e = _PARAMS.c, _LATEST.c, _TAGS.c, Experiment.__table__.c
    run_id = _RUNS.c.id
    stmt = q.with_only_columns(
        *_RUNS.c,
        select(e.name).where(e.id == _RUNS.c.experiment_id).correlate(_RUNS).scalar_subquery(),
        select(func.json_object_agg(p.key, func.json_build_array(p.value, p.type)))
        .where(p.run_id == run_id)
        .correlate(_RUNS)
        .scalar_subquery(),
        select(func.json_object_agg(lm.key, lm.value)).where(lm.run_id == run_id).correlate(_RUNS).scalar_subquery(),
        select(func.json_object_agg(t.key, t.value)).where(t.run_id == run_id).correlate(_RUNS).scalar_subquery(),
    )
    out = []
    for row in s.execute(stmt):
        exp, pj, mj, tj = row[-4:]
        params = {k: decode_param(v, typ) for k, (v, typ) in (pj or {}).items()}
        # a float8 in JSON: a number (1.0 comes as 1), or "NaN" / "Infinity" / "-Infinity" as a string
        metrics = {k: float(v) for k, v in (mj or {}).items()}
        out.append(run_dict(row, exp, params, metrics, dict(tj or {})))
    return out
