"""Serving fleets and their traffic in the registry: registration, heartbeats, minute rollups, reads for pages.

A fleet (one `roost serve`) registers what it serves and heartbeats every `interval_s`; it is *live* while its
last heartbeat is younger than GONE_AFTER intervals, *stopped* once it said so at a clean shutdown, and *gone*
otherwise (killed, host lost). Traffic comes as minute rollups (roost.serve.traffic reads the request logs from
remembered offsets); the rollup rows and the offsets they advance are written in one transaction, so a crash
between the two can neither lose nor double-count rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Text, cast, delete, func, select, update

from roost.registry import sketch
from roost.registry.store import Store
from roost.registry.tables import LogOffset, ServeFleet, ServeFleetModel, TrafficMinute
from roost.registry.values import aware, utcnow

GONE_AFTER = 3  # heartbeat intervals without a beat before a fleet shows "gone"
SPANS = (1, 10, 60)  # minutes per traffic row: every minute is also summed into its 10- and 60-minute rows
MAX_FLEETS_SHOWN = 20


@dataclass
class Rollup:
    """One (model, version, minute) of traffic: counts, the latency and prediction histograms (sketch buckets)."""

    requests: int = 0
    rows: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    latency: sketch.Hist = field(default_factory=dict)
    predictions: sketch.Hist = field(default_factory=dict)
    pred_name: str | None = None
    est_requests: float | None = None  # requests / their log sampling rate (None: all logged, = requests)

    @property
    def estimated(self) -> float:
        """The requests answered OK that the logged ones stand for (Σ 1 / sampling rate)."""
        return float(self.requests) if self.est_requests is None else self.est_requests

    def merged_with(self, *others: Rollup) -> Rollup:
        """This (empty) rollup with `others` added: their histograms are copied, never changed."""
        for o in others:
            self.add(o)
        return self

    def add(self, other: Rollup) -> None:
        """Merge another rollup of the same key into this one."""
        if self.est_requests is not None or other.est_requests is not None:
            self.est_requests = self.estimated + other.estimated
        self.requests += other.requests
        self.rows += other.rows
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        sketch.merge(self.latency, other.latency)
        sketch.merge(self.predictions, other.predictions)
        self.pred_name = self.pred_name or other.pred_name


RollupKey = tuple[str, str, int]  # (model, version, minute)


def register(
    store: Store,
    fleet_id: str,
    host: str,
    port: int,
    pid: int,
    models: list[dict[str, Any]],
    interval_s: float,
    log_rate: float,
) -> None:
    """Record a fleet that starts serving `models` ([{model, version, source, role, share}])."""
    now = utcnow()
    with store.write() as s:
        s.add(
            ServeFleet(
                id=fleet_id,
                host=host,
                port=port,
                pid=pid,
                started_at=now,
                heartbeat_at=now,
                interval_s=interval_s,
                log_rate=log_rate,
                models=models,
            )
        )
        for name in sorted({m["model"] for m in models}):
            s.add(ServeFleetModel(fleet_id=fleet_id, model=name))


def heartbeat(store: Store, fleet_id: str, models: list[dict[str, Any]] | None = None) -> None:
    """A fleet's sign of life (with what it serves now, when that changed: an alias moved)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if models is not None:
        values["models"] = models
    with store.write() as s:
        s.execute(update(ServeFleet).where(ServeFleet.id == fleet_id).values(**values))


def stopped(store: Store, fleet_id: str) -> None:
    """Mark a fleet stopped (its clean shutdown)."""
    now = utcnow()
    with store.write() as s:
        s.execute(update(ServeFleet).where(ServeFleet.id == fleet_id).values(heartbeat_at=now, stopped_at=now))


def state(row: dict[str, Any], now: datetime | None = None) -> str:
    """'live', 'stopped' or 'gone' (no heartbeat for GONE_AFTER intervals) of a fleet dict."""
    if row.get("stopped_at") is not None:
        return "stopped"
    now = now or utcnow()
    late = (now - row["heartbeat_at"]).total_seconds()
    return "live" if late <= GONE_AFTER * row["interval_s"] else "gone"


def fleets_of(store: Store, model: str, limit: int = MAX_FLEETS_SHOWN) -> list[dict[str, Any]]:
    """The fleets that serve(d) `model`, newest first, each with its state and uptime."""
    now = utcnow()
    with store.read() as s:
        q = (
            select(ServeFleet)
            .join(ServeFleetModel, ServeFleetModel.fleet_id == ServeFleet.id)
            .where(ServeFleetModel.model == model)
            .order_by(ServeFleet.heartbeat_at.desc())
            .limit(limit)
        )
        out = []
        for f in s.scalars(q):
            row: dict[str, Any] = {
                "id": f.id,
                "host": f.host,
                "port": f.port,
                "pid": f.pid,
                "started_at": aware(f.started_at),
                "heartbeat_at": aware(f.heartbeat_at),
                "stopped_at": aware(f.stopped_at) if f.stopped_at else None,
                "interval_s": f.interval_s,
                "log_rate": f.log_rate,
                "models": [m for m in f.models if m.get("model") == model],
            }
            row["state"] = state(row, now)
            end = row["stopped_at"] or (now if row["state"] == "live" else row["heartbeat_at"])
            row["uptime_s"] = max(0.0, (end - row["started_at"]).total_seconds())
            out.append(row)
    return out


def offsets(store: Store, paths: list[str]) -> dict[str, int]:
    """The rolled-up row count of each of these log files (absent: none yet)."""
    out: dict[str, int] = {}
    with store.read() as s:
        for i in range(0, len(paths), 500):
            chunk = paths[i : i + 500]
            q = select(LogOffset.path, LogOffset.rows).where(LogOffset.path.in_(chunk))
            out.update((str(p), int(n)) for p, n in s.execute(q))
    return out


class OffsetMoved(Exception):
    """Another process advanced a log file's offset since this one read it (its rollup is already counted)."""


def record(
    store: Store,
    fleet_id: str,
    rollups: dict[RollupKey, Rollup],
    advanced: dict[str, int],
    expected: dict[str, int] | None = None,
) -> None:
    """Merge minute rollups into the fleet's traffic rows and advance the files' offsets, in one transaction.

    `expected`: the offsets the rollups were read from; if another process moved one meanwhile, nothing is written
    and OffsetMoved is raised (two fleets, or a fleet and `roost monitor rollup`, rolling up one folder)."""
    now = utcnow()
    coarse: dict[tuple[str, str, int, int], Rollup] = {}
    for (model, version, minute), r in rollups.items():
        for span in SPANS:
            coarse.setdefault((model, version, span, minute // span * span), Rollup()).add(r)
    have: dict[str, int] = {}
    with store.write() as s:
        if expected:
            paths = list(expected)
            for i in range(0, len(paths), 500):
                q = select(LogOffset.path, LogOffset.rows).where(LogOffset.path.in_(paths[i : i + 500]))
                have.update((str(p), int(n)) for p, n in s.execute(q.with_for_update()))
            moved = [p for p, n in expected.items() if have.get(p, 0) != n]
            if moved:
                raise OffsetMoved(f"{len(moved)} log file(s) were rolled up by another process, e.g. {moved[0]}")
        for (model, version, span, minute), r in coarse.items():
            key = {"model": model, "version": version, "span": span, "minute": minute, "fleet_id": fleet_id}
            row = s.get(TrafficMinute, key)
            if row is None:
                s.add(
                    TrafficMinute(
                        **key,
                        requests=r.requests,
                        rows=r.rows,
                        errors=r.errors,
                        est_requests=r.est_requests,
                        latency_ms_sum=r.latency_ms_sum,
                        latency=dict(r.latency),
                        predictions=dict(r.predictions),
                        pred_name=r.pred_name,
                    )
                )
                continue
            if row.est_requests is not None or r.est_requests is not None:
                row.est_requests = (row.requests if row.est_requests is None else row.est_requests) + r.estimated
            row.requests += r.requests
            row.rows += r.rows
            row.errors += r.errors
            row.latency_ms_sum += r.latency_ms_sum
            row.latency = sketch.merge(dict(row.latency), r.latency)
            row.predictions = sketch.merge(dict(row.predictions), r.predictions)
            row.pred_name = row.pred_name or r.pred_name
        for path, rows in advanced.items():
            # a file with no offset row when checked is INSERTed, never looked up again: under READ COMMITTED a
            # second look would see another process's row committed since, and update it (counting the file twice)
            got = None if expected and path not in have else s.get(LogOffset, path)
            if got is None:
                s.add(LogOffset(path=path, rows=rows, updated_at=now))
            else:
                got.rows, got.updated_at = rows, now


KEEP_MINUTES = {1: 8 * 24 * 60, 10: 35 * 24 * 60}  # traffic rows of these spans are dropped when older (60: kept)
KEEP_OFFSETS = timedelta(days=3)  # the aggregator lists only today's and yesterday's files


def prune(store: Store, now_minute: int) -> int:
    """Drop traffic rows past KEEP_MINUTES of their span and offsets of files no pass lists any more; returns rows."""
    gone = 0
    with store.write() as s:
        for span, keep in KEEP_MINUTES.items():
            q = delete(TrafficMinute).where(TrafficMinute.span == span, TrafficMinute.minute < now_minute - keep)
            gone += int(getattr(s.execute(q), "rowcount", 0) or 0)
        res = s.execute(delete(LogOffset).where(LogOffset.updated_at < utcnow() - KEEP_OFFSETS))
        gone += int(getattr(res, "rowcount", 0) or 0)
    return gone


def traffic(
    store: Store, model: str, since_minute: int, until_minute: int | None = None, span: int = 1
) -> list[dict[str, Any]]:
    """Per (version, minute) traffic of a model in [since, until], summed over fleets, oldest minute first; with
    span 10 or 60, per 10- or 60-minute row (whose first minute is at or after `since_minute`)."""
    if span not in SPANS:
        raise ValueError(f"span must be one of {SPANS}, got {span}")
    q = select(TrafficMinute).where(
        TrafficMinute.model == model, TrafficMinute.span == span, TrafficMinute.minute >= since_minute
    )
    if until_minute is not None:
        q = q.where(TrafficMinute.minute <= until_minute)
    merged: dict[tuple[str, int], Rollup] = {}
    with store.read() as s:
        for t in s.scalars(q):
            got = Rollup(
                t.requests, t.rows, t.errors, t.latency_ms_sum, t.latency, t.predictions, t.pred_name, t.est_requests
            )
            have = merged.get((t.version, t.minute))
            if have is None:
                merged[(t.version, t.minute)] = got  # one fleet: kept as read (the caller must not change it)
            else:
                merged[(t.version, t.minute)] = Rollup().merged_with(have, got)
    return [{"version": v, "minute": m, "rollup": r} for (v, m), r in sorted(merged.items(), key=lambda kv: kv[0][1])]


def last_minute(store: Store, model: str) -> int | None:
    """The newest minute with traffic of a model (None: none recorded)."""
    with store.read() as s:
        got = s.scalar(
            select(func.max(TrafficMinute.minute)).where(TrafficMinute.model == model, TrafficMinute.span == 1)
        )
    return None if got is None else int(got)


def live_counts(store: Store) -> dict[str, int]:
    """How many live fleets serve each model (models no live fleet serves are left out)."""
    now = utcnow()
    out: dict[str, int] = {}
    with store.read() as s:
        q = (
            select(ServeFleetModel.model, ServeFleet.heartbeat_at, ServeFleet.interval_s)
            .join(ServeFleet, ServeFleet.id == ServeFleetModel.fleet_id)
            .where(ServeFleet.stopped_at.is_(None), ServeFleet.heartbeat_at >= now - timedelta(hours=3))
        )
        for model, beat, interval in s.execute(q):
            row = {"stopped_at": None, "heartbeat_at": aware(beat), "interval_s": interval}
            if state(row, now) == "live":
                out[model] = out.get(model, 0) + 1
    return out


@dataclass
class Window:
    """A model's traffic rows in a window, summed over fleets, as arrays: one entry per (version, minute), oldest
    first, and the latency / prediction histograms as dense count matrices (roost.registry.sketch.dense)."""

    versions: list[str]
    minutes: np.ndarray
    requests: np.ndarray
    est_requests: np.ndarray
    rows: np.ndarray
    errors: np.ndarray
    latency_ms_sum: np.ndarray
    latency: np.ndarray
    latency_first: int
    predictions: np.ndarray
    predictions_first: int
    pred_name: str | None


def window(store: Store, model: str, since_minute: int, until_minute: int, span: int = 1) -> Window:
    """`traffic` as arrays (one query, no per-row Python merging): what the model page's charts are drawn from."""
    if span not in SPANS:
        raise ValueError(f"span must be one of {SPANS}, got {span}")
    t = TrafficMinute
    q = (
        select(
            t.version,
            t.minute,
            t.requests,
            t.est_requests,
            t.rows,
            t.errors,
            t.latency_ms_sum,
            cast(t.latency, Text),
            cast(t.predictions, Text),
            t.pred_name,
        )
        .where(t.model == model, t.span == span, t.minute >= since_minute, t.minute <= until_minute)
        .order_by(t.minute)
    )
    with store.read() as s:
        got = s.execute(q).all()
    keys: dict[tuple[str, int], int] = {}
    group = np.fromiter((keys.setdefault((r[0], int(r[1])), len(keys)) for r in got), dtype=np.int64, count=len(got))
    n = len(keys)

    def total(i: int, nulls_from: int | None = None) -> np.ndarray:
        vals = [r[i] if r[i] is not None else r[nulls_from or i] for r in got]
        return np.bincount(group, weights=np.asarray(vals, dtype=np.float64), minlength=n)

    lat, lat_lo = sketch.dense(*_regroup(sketch.parse_many([r[7] or "{}" for r in got]), group), rows=n)
    pred, pred_lo = sketch.dense(*_regroup(sketch.parse_many([r[8] or "{}" for r in got]), group), rows=n)
    return Window(
        versions=[v for v, _ in keys],
        minutes=np.array([m for _, m in keys], dtype=np.int64),
        requests=np.rint(total(2)).astype(np.int64),
        est_requests=total(3, nulls_from=2),
        rows=np.rint(total(4)).astype(np.int64),
        errors=np.rint(total(5)).astype(np.int64),
        latency_ms_sum=total(6),
        latency=lat,
        latency_first=lat_lo,
        predictions=pred,
        predictions_first=pred_lo,
        pred_name=next((r[9] for r in got if r[9]), None),
    )


def _regroup(
    parsed: tuple[np.ndarray, np.ndarray, np.ndarray], group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parsed (row, key, count) with each row replaced by its (version, minute) group: fleets' rows add up."""
    row, key, count = parsed
    return group[row] if len(row) else row, key, count
