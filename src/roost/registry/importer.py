"""Bulk import of an MLflow tracking store (a `sqlite:///mlflow.db` URI or an `./mlruns` folder) into roost.

Experiments (by name), runs (name, user, status, start/end times, git commit, source, parent), params, tags and the
full metric history are copied; artifacts are not (a run keeps MLflow's artifact_uri). Runs are written in bulk
transactions of BATCH_RUNS runs; a run id that the store already has is skipped, so an import can be repeated.
Runs MLflow deleted (themselves, or with their experiment) are left behind unless include_deleted: then they keep
that lifecycle — roost's 'deleted' stage, hidden since MLflow's deleted_time (so `roost gc --older-than` counts
from MLflow's deletion; a store too old to record it counts from the import), restorable until gc.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select, update

from roost.errors import RoostError
from roost.registry import engine as eng
from roost.registry.retention import ACTIVE, DELETED
from roost.registry.store import Store, param_rows
from roost.registry.tables import Base, LatestMetric, Metric, Param, Tag
from roost.registry.tables import Run as RunRow

__all__ = ["BATCH_RUNS", "ImportReport", "MlflowRun", "import_mlflow", "infer_param", "read_mlflow"]

log = logging.getLogger(__name__)

BATCH_RUNS = 500
SOURCE_TAG = "roost.imported_from"  # "mlflow:<store>" on every imported run
# MLflow's file store writes the status as its RunStatus enum number
_FILE_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}


@dataclass
class MlflowRun:
    """One MLflow run as read from its store (times in MLflow's milliseconds)."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    user: str | None
    artifact_uri: str | None
    deleted: bool
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, step, timestamp ms
    deleted_ms: int | None = None  # when MLflow deleted it (None: not recorded by that MLflow)


@dataclass
class ImportReport:
    """What an import did."""

    experiments: list[str] = field(default_factory=list)
    runs: int = 0
    params: int = 0
    tags: int = 0
    metric_points: int = 0
    skipped_existing: int = 0
    skipped_deleted: int = 0
    skipped_nan_points: int = 0


def infer_param(text: str) -> Any:
    """The typed value of an MLflow param string when the type round-trips exactly ('3' → 3, '0.01' → 0.01)."""
    try:
        if str(int(text)) == text:
            return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
        if repr(f) == text:
            return f
    except ValueError:
        pass
    if text in ("True", "False"):
        return text == "True"
    return text


def _ms(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value) / 1000, UTC)


def _column(con: sqlite3.Connection, table: str, name: str) -> str:
    """`name` when the table has that column (MLflow added columns over the years), else NULL."""
    return name if any(r[1] == name for r in con.execute(f"PRAGMA table_info({table})")) else "NULL"


def _sqlite_runs(path: Path, batch: int) -> Iterator[list[MlflowRun]]:
    """MLflow runs of a SQLite tracking database, `batch` at a time, read-only."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            exps = {
                r[0]: (str(r[1]), r[2] == "deleted", r[3])
                for r in con.execute(
                    f"SELECT experiment_id, name, {_column(con, 'experiments', 'lifecycle_stage')}, "
                    f"{_column(con, 'experiments', 'last_update_time')} FROM experiments"
                )
            }
            rows = con.execute(
                "SELECT run_uuid, experiment_id, name, status, start_time, end_time, user_id, artifact_uri, "
                f"lifecycle_stage, {_column(con, 'runs', 'deleted_time')} FROM runs ORDER BY start_time, run_uuid"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise RoostError(
                f"{path} is not an MLflow tracking database ({exc})", hint="pass sqlite:///PATH/mlflow.db or ./mlruns"
            ) from None
        for i in range(0, len(rows), batch):
            runs = {}
            for r in rows[i : i + batch]:
                name, exp_deleted, exp_changed = exps.get(r[1], (str(r[1]), False, None))
                deleted = r[8] == "deleted" or exp_deleted  # an MLflow older than 2.0 left them 'active'
                when = (r[9] if r[8] == "deleted" else None) or (exp_changed if exp_deleted else None)
                runs[r[0]] = MlflowRun(r[0], name, r[2], r[3], r[4], r[5], r[6], r[7], deleted, deleted_ms=when)
            marks = ",".join("?" * len(runs))
            ids = list(runs)
            for k, v, rid in con.execute(f"SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks})", ids):
                runs[rid].params[k] = v
            for k, v, rid in con.execute(f"SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks})", ids):
                runs[rid].tags[k] = v
            for k, v, ts, st, nan, rid in con.execute(
                f"SELECT key, value, timestamp, step, is_nan, run_uuid FROM metrics WHERE run_uuid IN ({marks})",
                ids,
            ):
                runs[rid].metrics.append((k, math.nan if nan else float(v), int(st), int(ts)))
            yield list(runs.values())
    finally:
        con.close()


def _read_tree(folder: Path) -> dict[str, str]:
    """{key: file content} of an mlruns params/ or tags/ folder (keys with '/' are nested folders)."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def _file_runs(root: Path, batch: int) -> Iterator[list[MlflowRun]]:
    """MLflow runs of a file store (./mlruns), `batch` at a time."""
    import yaml

    out: list[MlflowRun] = []
    trash = root / ".trash"  # MLflow moves a deleted experiment's folder here, its runs marked deleted
    exp_dirs = [p for p in root.iterdir() if p.is_dir()] + (list(trash.iterdir()) if trash.is_dir() else [])
    for exp_dir in sorted(p for p in exp_dirs if p.is_dir()):
        exp_meta = exp_dir / "meta.yaml"
        if not exp_meta.is_file():
            continue
        emeta = yaml.safe_load(exp_meta.read_text()) or {}
        exp_name = str(emeta.get("name", exp_dir.name))
        exp_deleted = emeta.get("lifecycle_stage") == "deleted" or exp_dir.parent == trash
        for run_dir in sorted(p for p in exp_dir.iterdir() if (p / "meta.yaml").is_file()):
            meta = yaml.safe_load((run_dir / "meta.yaml").read_text()) or {}
            status = meta.get("status", 3)
            run = MlflowRun(
                run_id=str(meta.get("run_id") or meta.get("run_uuid") or run_dir.name),
                experiment=exp_name,
                name=meta.get("run_name"),
                status=_FILE_STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
                start_ms=meta.get("start_time"),
                end_ms=meta.get("end_time"),
                user=meta.get("user_id"),
                artifact_uri=meta.get("artifact_uri"),
                deleted=meta.get("lifecycle_stage") == "deleted" or exp_deleted,
                deleted_ms=meta.get("deleted_time") or (emeta.get("last_update_time") if exp_deleted else None),
                params=_read_tree(run_dir / "params"),
                tags=_read_tree(run_dir / "tags"),
            )
            for key, text in _read_tree(run_dir / "metrics").items():
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) >= 2:
                        step = int(parts[2]) if len(parts) > 2 else 0
                        run.metrics.append((key, float(parts[1]), step, int(parts[0])))
            out.append(run)
            if len(out) >= batch:
                yield out
                out = []
    if out:
        yield out


def read_mlflow(uri: str, batch: int = BATCH_RUNS) -> Iterator[list[MlflowRun]]:
    """The runs of an MLflow tracking store, in batches: `sqlite:///mlflow.db`, `file:///…/mlruns` or a folder."""
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise RoostError(f"no MLflow database at {path}", hint="check the path after sqlite:///")
        return _sqlite_runs(path, batch)
    if "://" in uri and not uri.startswith("file://"):
        raise RoostError(
            f"cannot import from {uri}: only MLflow's SQLite and file stores are read",
            hint="pass sqlite:///PATH/mlflow.db or the ./mlruns folder",
        )
    root = Path(uri.removeprefix("file://"))
    if not root.is_dir():
        raise RoostError(f"no MLflow store at {root}", hint="pass sqlite:///PATH/mlflow.db or the ./mlruns folder")
    return _file_runs(root, batch)


def import_mlflow(uri: str, store: Store, prefix: str = "", include_deleted: bool = False) -> ImportReport:
    """Copy an MLflow store's experiments and runs into `store`, BATCH_RUNS runs per transaction."""
    report = ImportReport()
    for batch in read_mlflow(uri):
        _write_batch(store, batch, uri, prefix, include_deleted, report)
    if report.runs:
        eng.analyze(store.engine)  # the planner's statistics for the runs just added (SQLite)
    log.info("imported %d runs from %s", report.runs, uri)
    return report


def _write_batch(
    store: Store, batch: list[MlflowRun], uri: str, prefix: str, include_deleted: bool, report: ImportReport
) -> None:
    """Insert one batch of runs (params, tags, metric history, latest metrics) in one transaction."""
    wanted = [r for r in batch if include_deleted or not r.deleted]
    report.skipped_deleted += len(batch) - len(wanted)
    with store.read() as s:
        have = set(s.scalars(select(RunRow.id).where(RunRow.id.in_([r.run_id for r in wanted]))))
        known_parents = set(
            s.scalars(select(RunRow.id).where(RunRow.id.in_([r.tags.get("mlflow.parentRunId", "") for r in wanted])))
        )
    report.skipped_existing += sum(r.run_id in have for r in wanted)
    todo = [r for r in wanted if r.run_id not in have]
    if not todo:
        return
    ids = {r.run_id for r in todo} | known_parents
    runs, params, tags, points, latest, parents = [], [], [], [], [], []
    now = datetime.now(UTC)
    for r in todo:
        exp = prefix + r.experiment
        eid = store.get_or_create_experiment(exp)
        if exp not in report.experiments:
            report.experiments.append(exp)
        good = [m for m in r.metrics if not math.isnan(m[1])]
        report.skipped_nan_points += len(r.metrics) - len(good)
        status, end = r.status, _ms(r.end_ms)
        if status not in ("FINISHED", "FAILED", "KILLED"):  # no roost process will beat for it
            status = "LOST"
            end = end or _ms(max((m[3] for m in good), default=r.start_ms))
        parent = r.tags.get("mlflow.parentRunId")
        start = _ms(r.start_ms) or _ms(min((m[3] for m in good), default=0))
        runs.append(
            {
                "id": r.run_id,
                "experiment_id": eid,
                "name": r.name or r.tags.get("mlflow.runName"),
                "status": status,
                "start_time": start,
                "end_time": end,
                "heartbeat_at": None,
                "user": r.user or r.tags.get("mlflow.user"),
                "git_commit": r.tags.get("mlflow.source.git.commit"),
                "git_dirty": None,
                "source": r.tags.get("mlflow.source.name"),
                "parent_run_id": None,  # set below, once every run of the batch exists
                "artifact_uri": r.artifact_uri or "",
                "lifecycle_stage": DELETED if r.deleted else ACTIVE,
                "hidden_at": (_ms(r.deleted_ms) or now) if r.deleted else None,
            }
        )
        if parent in ids:
            parents.append({"rid": r.run_id, "pid": parent})
        params += [
            {**p, "run_start": start} for p in param_rows(r.run_id, {k: infer_param(v) for k, v in r.params.items()})
        ]
        tags += [{"run_id": r.run_id, "key": k, "value": v} for k, v in {**r.tags, SOURCE_TAG: "mlflow:" + uri}.items()]
        last: dict[str, tuple[float, int, float]] = {}
        for k, v, st, ts in good:
            points.append({"run_id": r.run_id, "key": k, "value": v, "step": st, "timestamp": ts / 1000})
            cur = last.get(k)
            if cur is None or (st, ts / 1000) >= (cur[1], cur[2]):
                last[k] = (v, st, ts / 1000)
        latest += [
            {"run_id": r.run_id, "key": k, "value": v, "step": st, "timestamp": ts} for k, (v, st, ts) in last.items()
        ]
    t = Base.metadata.tables
    with eng.write_connection(store.engine) as conn:
        conn.execute(t[RunRow.__tablename__].insert(), runs)
        for table, rows in ((Param, params), (Tag, tags), (Metric, points), (LatestMetric, latest)):
            if rows:
                conn.execute(t[table.__tablename__].insert(), rows)
        if parents:
            runs_t = t[RunRow.__tablename__]
            stmt = update(runs_t).where(runs_t.c.id == bindparam("rid")).values(parent_run_id=bindparam("pid"))
            conn.execute(stmt, parents)
    report.runs += len(runs)
    report.params += len(params)
    report.tags += len(tags)
    report.metric_points += len(points)
