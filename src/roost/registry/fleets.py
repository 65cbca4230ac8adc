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

from sqlalchemy import delete, func, select, update

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

    def merged_with(self, *others: Rollup) -> Rollup:
        """This (empty) rollup with `others` added: their histograms are copied, never changed."""
        for o in others:
            self.add(o)
        return self

    def add(self, other: Rollup) -> None:
        """Merge another rollup of the same key into this one."""
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


def record(store: Store, fleet_id: str, rollups: dict[RollupKey, Rollup], advanced: dict[str, int]) -> None:
    """Merge minute rollups into the fleet's traffic rows and advance the files' offsets, in one transaction."""
    now = utcnow()
    coarse: dict[tuple[str, str, int, int], Rollup] = {}
    for (model, version, minute), r in rollups.items():
        for span in SPANS:
            coarse.setdefault((model, version, span, minute // span * span), Rollup()).add(r)
    with store.write() as s:
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
                        latency_ms_sum=r.latency_ms_sum,
                        latency=dict(r.latency),
                        predictions=dict(r.predictions),
                        pred_name=r.pred_name,
                    )
                )
                continue
            row.requests += r.requests
            row.rows += r.rows
            row.errors += r.errors
            row.latency_ms_sum += r.latency_ms_sum
            row.latency = sketch.merge(dict(row.latency), r.latency)
            row.predictions = sketch.merge(dict(row.predictions), r.predictions)
            row.pred_name = row.pred_name or r.pred_name
        for path, rows in advanced.items():
            got = s.get(LogOffset, path)
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
            got = Rollup(t.requests, t.rows, t.errors, t.latency_ms_sum, t.latency, t.predictions, t.pred_name)
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
