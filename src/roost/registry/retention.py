"""Retention: soft-delete, archive and restore runs by filter, and `gc` that removes deleted runs for good.

A run's `lifecycle_stage` is 'active' (listed), 'archived' (kept, hidden from default listings), 'deleted'
(hidden; `restore` brings it back until gc) or 'purging' (gc has started removing it: no longer restorable).

gc order, per batch of runs (one transaction each step): mark the batch 'purging' → remove its artifacts →
delete its rows (metrics, latest metrics, params, tags, run). A crash therefore never leaves artifacts without
rows: at worst rows marked 'purging' whose artifacts are partly or wholly gone, and the next gc finishes them
first (artifact removal is idempotent).

Two gc at once: new batches never overlap (each is marked 'purging' under SQLite's write lock, or FOR UPDATE SKIP
LOCKED on PostgreSQL), but a gc that starts while another is part-way resumes the other's batch as leftovers. Both
then remove the same folders: what is already gone is skipped quietly (reclaim.py), the files to keep are read
while the run's rows still exist (their rows locked), and only the gc whose transaction deleted a run's rows reports
it. Runs, files and model versions end the same as after one gc.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from roost.errors import RoostError
from roost.registry.reclaim import own_folder, remove_artifacts, run_vacuum, store_size
from roost.registry.selection import parse_age, select_runs
from roost.registry.store import Store, utcnow
from roost.registry.tables import LatestMetric, Metric, ModelVersion, Param, Run, Tag

log = logging.getLogger(__name__)

ACTIVE, ARCHIVED, DELETED, PURGING = "active", "archived", "deleted", "purging"
STAGES = (ACTIVE, ARCHIVED, DELETED, PURGING)
IMPORTED_TAG = "roost.imported_from"  # runs imported from MLflow: their artifacts belong to MLflow, never removed
BATCH = 500  # runs per transaction when changing stages
GC_BATCH = 100  # runs per gc batch (each batch: mark, remove artifacts, delete rows)
GC_BATCH_MAX = 10_000  # a batch's ids go into IN lists: SQLite allows 32,766 bound values per statement
Progress = Callable[[int, int], None]  # (done, total)

# action -> (stages a run may be in to be selected, the stage it moves to)
_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "delete": ((ACTIVE, ARCHIVED), DELETED),
    "archive": ((ACTIVE,), ARCHIVED),
    "restore": ((DELETED, ARCHIVED), ACTIVE),
}


@dataclass
class StageChange:
    """What a delete/archive/restore selected and did."""

    action: str
    run_ids: list[str] = field(default_factory=list)  # runs changed (or that would be, with dry_run)
    skipped_running: list[str] = field(default_factory=list)  # RUNNING runs left alone (delete/archive, no force)
    model_versions: list[str] = field(default_factory=list)  # 'name/version' referencing a deleted run (force)
    dry_run: bool = False


@dataclass
class GcReport:
    """What gc removed (or would remove, with dry_run)."""

    run_ids: list[str] = field(default_factory=list)
    artifacts_removed: int = 0  # artifact roots removed (runs whose files were deleted)
    artifacts_kept: list[str] = field(default_factory=list)  # 'run_id: why' (imported, outside its run folder)
    resumed: int = 0  # runs removed that a previous, interrupted gc had marked 'purging'
    dry_run: bool = False
    size_before: int | None = None  # store size in bytes around VACUUM (vacuum=True)
    size_after: int | None = None


def _references(store: Store, ids: list[str]) -> list[tuple[str, int, str]]:
    """(model name, version, run id) of the model versions registered from any of `ids`."""
    out: list[tuple[str, int, str]] = []
    with store.read() as s:
        for chunk in _chunks(ids, BATCH):
            rows = s.execute(
                select(ModelVersion.name, ModelVersion.version, ModelVersion.run_id).where(
                    ModelVersion.run_id.in_(chunk)
                )
            ).all()
            out += [(r[0], int(r[1]), str(r[2])) for r in rows]
    return sorted(out)


def change_stage(
    store: Store,
    action: str,
    run_ids: Iterable[str] | None = None,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> StageChange:
    """Delete (soft), archive or restore the runs matching every criterion given, in batches."""
    if action not in _MOVES:
        raise RoostError(f"unknown action {action!r}", hint="one of: " + ", ".join(_MOVES))
    ids = list(run_ids or [])
    if not ids and not (filter and filter.strip()) and not experiment and older_than is None:
        raise RoostError(
            f"nothing selects the runs to {action}",
            hint="give run ids, --filter, --experiment or --older-than (e.g. --filter \"status = 'FAILED'\")",
        )
    sources, target = _MOVES[action]
    found = select_runs(store, sources, ids, filter, experiment, parse_age(older_than))
    out = StageChange(action=action, dry_run=dry_run)
    if ids and not found:
        with store.read() as s:
            stages = dict(s.execute(select(Run.id, Run.lifecycle_stage).where(Run.id.like(f"{ids[0]}%"))).all())
        raise RoostError(
            f"cannot {action} run {ids[0]!r}: it is {', '.join(sorted(set(stages.values()))) or 'gone'}",
            hint="only "
            + " or ".join(sources)
            + f" runs can be {action}d"
            + ("; gc has started removing it" if PURGING in stages.values() else ""),
        )
    for rid, status in found:
        if action != "restore" and status == "RUNNING" and not force:
            out.skipped_running.append(rid)
        else:
            out.run_ids.append(rid)
    if out.skipped_running:
        log.warning("%d RUNNING run(s) left alone (pass force=True to %s them)", len(out.skipped_running), action)
    if action == "delete" and out.run_ids:
        refs = _references(store, out.run_ids)
        out.model_versions = [f"{n}/{v}" for n, v, _ in refs]
        if refs and not force:
            shown = ", ".join(f"{n}/{v} (run {r[:8]})" for n, v, r in refs[:5])
            more = f" and {len(refs) - 5} more" if len(refs) > 5 else ""
            raise RoostError(
                f"refusing to delete {len(out.run_ids)} run(s): model version {shown}{more} was registered from "
                f"{'it' if len(refs) == 1 else 'them'}",
                hint="narrow the filter, or pass --force (force=True): the model version stays loadable (gc keeps "
                "the files it uses)",
            )
    if dry_run or not out.run_ids:
        return out
    now = utcnow()
    values: dict[str, Any] = {"lifecycle_stage": target, "hidden_at": None if target == ACTIVE else now}
    done = 0
    for chunk in _chunks(out.run_ids, BATCH):
        with store.write() as s:
            s.execute(
                update(Run)
                .where(Run.id.in_(chunk), Run.lifecycle_stage.in_(sources))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        done += len(chunk)
        if progress is not None:
            progress(done, len(out.run_ids))
    log.info("%s: %d run(s) now %s", action, len(out.run_ids), target)
    return out


def _chunks(xs: list[str], n: int) -> list[list[str]]:
    return [xs[i : i + n] for i in range(0, len(xs), n)]


def _leftovers(store: Store) -> list[tuple[str, str]]:
    """(id, uri) of the runs an interrupted gc marked 'purging' (one pass over the hidden runs' index)."""
    with store.read() as s:
        rows = s.execute(
            select(Run.id, Run.artifact_uri).where(Run.hidden_at.is_not(None), Run.lifecycle_stage == PURGING)
        ).all()
    return [(r[0], r[1]) for r in rows]


def _next_batch(
    store: Store, cutoff: datetime, n: int, since: datetime | None
) -> tuple[list[tuple[str, str]], datetime | None]:
    """The next `n` deleted runs (oldest delete first, none deleted before `since`), marked 'purging' at once.

    Returns (id, uri) and the newest hidden_at of the batch: the next batch starts there (rows before it are gone or
    were skipped), so each batch reads only its own stretch of ix_runs_hidden_at — no rescan, no sort.
    """
    q = select(Run.id, Run.artifact_uri, Run.hidden_at).where(Run.hidden_at <= cutoff, Run.lifecycle_stage == DELETED)
    if since is not None:
        q = q.where(Run.hidden_at >= since)
    with store.write() as s:
        # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already excludes other writers): a restore committed
        # between this SELECT and the UPDATE cannot slip through; SKIP LOCKED lets two gc processes share the work
        rows = s.execute(q.order_by(Run.hidden_at).limit(n).with_for_update(skip_locked=True)).all()
        if rows:
            s.execute(
                update(Run)
                .where(Run.id.in_([r[0] for r in rows]), Run.lifecycle_stage == DELETED)
                .values(lifecycle_stage=PURGING)
                .execution_options(synchronize_session=False)
            )
    return [(r[0], r[1]) for r in rows], (rows[-1][2] if rows else since)


def _artifact_plan(
    store: Store, rows: list[tuple[str, str]], claim: bool = False
) -> dict[str, tuple[bool, str, list[str]]]:
    """run id -> (remove?, why not, model version sources to keep) for one batch.

    claim=True (a real gc): only the runs still 'purging', read in a write transaction that locks their rows (FOR
    UPDATE; SQLite's write lock): a run that another gc finished meanwhile is left out, and one it is finishing is
    read before that gc unlinks its model versions (read after, the run would have nothing to keep and lose the
    files its model versions are loaded from).
    """
    ids = [r[0] for r in rows]
    with store.write() if claim else store.read() as s:
        if claim:
            live = set(
                s.scalars(select(Run.id).where(Run.id.in_(ids), Run.lifecycle_stage == PURGING).with_for_update()).all()
            )
            ids = [i for i in ids if i in live]
        imported = set(s.scalars(select(Tag.run_id).where(Tag.run_id.in_(ids), Tag.key == IMPORTED_TAG)))
        keeps: dict[str, list[str]] = {}
        for rid, src in s.execute(select(ModelVersion.run_id, ModelVersion.source).where(ModelVersion.run_id.in_(ids))):
            keeps.setdefault(str(rid), []).append(str(src))
    plan: dict[str, tuple[bool, str, list[str]]] = {}
    for rid, uri in rows:
        if rid not in ids:
            log.debug("gc: run %s was removed by another gc meanwhile", rid)
        elif rid in imported:
            plan[rid] = (False, "imported: its artifacts belong to the source store", [])
        elif not uri or not own_folder(rid, uri):
            plan[rid] = (False, f"artifact root {uri!r} is not the run's own folder", [])
        else:
            plan[rid] = (True, "", keeps.get(rid, []))
    return plan


def _delete_rows(store: Store, ids: list[str]) -> list[str]:
    """Delete the rows of purging runs `ids` in one transaction (children and model versions lose the link).

    Returns the runs whose rows this call deleted: not those another gc deleted first. Every row it changes (its
    runs and their children) is locked first, in one statement in id order (FOR UPDATE; SQLite: the write lock), so
    two gc never both count one run, nor deadlock on each other's child runs.
    """
    with store.write() as s:
        mine = set(ids)
        locked = s.execute(
            select(Run.id, Run.lifecycle_stage)
            .where(Run.id.in_(ids) | Run.parent_run_id.in_(ids))
            .order_by(Run.id)
            .with_for_update()
        ).all()
        ids = [rid for rid, stage in locked if rid in mine and stage == PURGING]
        if not ids:
            return []
        for model in (Metric, LatestMetric, Param, Tag):
            s.execute(delete(model).where(model.run_id.in_(ids)).execution_options(synchronize_session=False))
        s.execute(
            update(ModelVersion)
            .where(ModelVersion.run_id.in_(ids))
            .values(run_id=None)
            .execution_options(synchronize_session=False)
        )
        s.execute(
            update(Run)
            .where(Run.parent_run_id.in_(ids))
            .values(parent_run_id=None)
            .execution_options(synchronize_session=False)
        )
        s.execute(
            delete(Run)
            .where(Run.id.in_(ids), Run.lifecycle_stage == PURGING)
            .execution_options(synchronize_session=False)
        )
    return ids


def _purge(store: Store, batch: list[tuple[str, str]], out: GcReport) -> None:
    """Remove the artifacts, then the rows, of a batch of runs already marked 'purging'.

    A run another gc removed meanwhile (it resumed this batch, or this gc resumed its) is skipped and not reported.
    """
    uris = dict(batch)
    plan = _artifact_plan(store, batch, claim=True)
    for rid, (ok, _, keep) in plan.items():
        if ok:
            remove_artifacts(rid, uris[rid], keep)
    mine = set(_delete_rows(store, list(plan)))
    for rid, (ok, why, _) in plan.items():
        if rid not in mine:
            log.debug("gc: run %s was finished by another gc", rid)
        elif ok:
            out.artifacts_removed += 1
        else:
            log.info("gc: run %s keeps its artifacts (%s)", rid, why)
            out.artifacts_kept.append(f"{rid}: {why}")
    out.run_ids += [rid for rid, _ in batch if rid in mine]


def gc(
    store: Store,
    older_than: str | timedelta | None = None,
    dry_run: bool = False,
    batch_size: int = GC_BATCH,
    vacuum: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """Permanently remove runs deleted longer than `older_than` ago (default: all): artifacts, then rows."""
    if not 1 <= batch_size <= GC_BATCH_MAX:
        raise RoostError(
            f"batch size {batch_size} must be between 1 and {GC_BATCH_MAX:,}", hint="e.g. --batch-size 100"
        )
    age = parse_age(older_than) or timedelta(0)
    cutoff = utcnow() - age
    out = GcReport(dry_run=dry_run)
    eligible = (Run.hidden_at.is_not(None)) & (
        (Run.lifecycle_stage == PURGING) | ((Run.lifecycle_stage == DELETED) & (Run.hidden_at <= cutoff))
    )
    if dry_run:
        with store.read() as s:
            rows = s.execute(select(Run.id, Run.artifact_uri).where(eligible).order_by(Run.hidden_at, Run.id)).all()
        pairs = [(str(r[0]), str(r[1])) for r in rows]
        out.run_ids = [p[0] for p in pairs]
        for i in range(0, len(pairs), GC_BATCH):
            plan = _artifact_plan(store, pairs[i : i + GC_BATCH])
            out.artifacts_removed += sum(1 for ok, _, _ in plan.values() if ok)
            out.artifacts_kept += [f"{rid}: {why}" for rid, (ok, why, _) in plan.items() if not ok]
        return out
    with store.read() as s:
        total = int(s.scalar(select(func.count()).select_from(Run).where(eligible)) or 0)
    if vacuum:
        out.size_before = store_size(store)
    leftovers = _leftovers(store)
    resumable = {rid for rid, _ in leftovers}
    since: datetime | None = None
    while True:
        if leftovers:
            batch, leftovers = leftovers[:batch_size], leftovers[batch_size:]
        else:
            batch, since = _next_batch(store, cutoff, batch_size, since)
        if not batch:
            break
        _purge(store, batch, out)
        if progress is not None:
            progress(len(out.run_ids), max(total, len(out.run_ids)))
    out.resumed = len(resumable.intersection(out.run_ids))  # (not those another gc, still at work, finished)
    log.info("gc: removed %d run(s) (%d resumed)", len(out.run_ids), out.resumed)
    if vacuum:
        run_vacuum(store)
        out.size_after = store_size(store)
    return out


__all__ = [
    "ACTIVE",
    "ARCHIVED",
    "DELETED",
    "PURGING",
    "STAGES",
    "GcReport",
    "StageChange",
    "change_stage",
    "gc",
    "parse_age",
    "remove_artifacts",
    "run_vacuum",
    "store_size",
]
