"""Selecting runs for retention: by id or unique prefix, filter, experiment and age (`--older-than 30d`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import ColumnElement, select

from roost.errors import RoostError
from roost.registry import reads
from roost.registry.prefix import resolve_run_id
from roost.registry.store import Store, utcnow
from roost.registry.tables import Run

MAX_AGE_DAYS = 365_000  # --older-than beyond 1,000 years is a typo, and far past the calendar's start
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_age(value: str | timedelta | None) -> timedelta | None:
    """'30d', '12h', '90m', '45s', '2w' (a bare number means days) → timedelta; None stays None."""
    if value is None or isinstance(value, timedelta):
        return value
    m = _AGE.match(str(value))
    if not m:
        raise RoostError(f"age {value!r} is not a duration", hint="e.g. 30d, 12h, 90m, 45s or 2w (0d: any age)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds <= MAX_AGE_DAYS * 86400.0:  # also inf (a 400-digit number)
        raise RoostError(
            f"age {value!r} is more than {MAX_AGE_DAYS // 365:,} years", hint="e.g. 30d, 12h, 90m, 45s or 2w"
        )
    return timedelta(seconds=seconds)


def experiment_ids(store: Store, names: list[str]) -> list[int]:
    """Ids of the named experiments (the registry's one lookup, with the CLI's hint)."""
    return reads.experiment_ids(names, store, where="see `roost experiments list`")


def select_runs(
    store: Store,
    stages: tuple[str, ...],
    run_ids: Iterable[str] | None,
    filter: str | None,
    experiment: str | list[str] | None,
    older_than: timedelta | None,
) -> list[tuple[str, str]]:
    """(id, status) of the runs in `stages` matching every criterion given, oldest first."""
    from roost.registry.filter_sql import compile_filter

    conds: list[ColumnElement[bool]] = [Run.lifecycle_stage.in_(stages)]
    ids = list(run_ids or [])
    if ids:
        full = []
        for rid in ids:
            with store.read() as s:
                full.append(resolve_run_id(s, rid, hint="list runs with `roost runs list --all`"))
        conds.append(Run.id.in_(full))
    if experiment:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        conds.append(Run.experiment_id.in_(experiment_ids(store, names)))
    if older_than is not None:
        conds.append(Run.start_time < utcnow() - older_than)
    q = select(Run.id, Run.status)
    if filter and filter.strip():
        q = q.where(compile_filter(filter))
    with store.read() as s:
        rows = s.execute(q.where(*conds).order_by(Run.start_time, Run.id)).all()
    return [(r[0], r[1]) for r in rows]


__all__ = ["MAX_AGE_DAYS", "experiment_ids", "parse_age", "select_runs"]
