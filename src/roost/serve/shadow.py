"""The shadow mirror: copies of answered requests go to a shadow version from a bounded queue, off the response
path; its answers are compared with the primary's and recorded. A slow shadow drops mirrors, a failing one is
counted and summarised (never logged per request), and at shutdown queued mirrors are drained within the grace
and cancelled past it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from roost.serve.loader import LoadedModel
from roost.serve.rollout import SHADOW_SALT, ShadowLog, compare, share

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 60.0  # at most one summary line per shadow version this often while it keeps failing


@dataclass
class _Failures:
    """Failures of one shadow version: the total, and those not yet in a log line (by error kind)."""

    total: int = 0
    unreported: Counter[str] = field(default_factory=Counter)
    last_line: float = 0.0


class FailureLog:
    """Logs the first failure of each shadow version with its message, then at most one summary line per
    `every_s` seconds with the count since the last line (the metrics count every failure)."""

    def __init__(self, every_s: float = SUMMARY_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._by: dict[tuple[str, str], _Failures] = {}

    def failed(self, model: str, version: str, kind: str, message: str) -> None:
        """Record one failed mirror; logs only the first one and, at most every `every_s`, a summary."""
        f = self._by.setdefault((model, version), _Failures())
        f.total += 1
        now = self.clock()
        if f.total == 1:
            f.last_line = now
            log.warning(
                "shadow of %s (version %s) failed: %s: %s; further failures are counted in "
                "roost_shadow_failures_total and summarised here at most every %gs",
                model,
                version,
                kind,
                message[:300],
                self.every_s,
            )
            return
        f.unreported[kind] += 1
        if now - f.last_line >= self.every_s:
            self._summary(model, version, f, now)

    def _summary(self, model: str, version: str, f: _Failures, now: float) -> None:
        """One line: failures since the last line, by kind, and the total."""
        kinds = ", ".join(f"{k}: {n}" for k, n in f.unreported.most_common())
        log.warning(
            "shadow of %s (version %s): %d more mirrors failed in the last %.0fs (%s); %d failed in all",
            model,
            version,
            sum(f.unreported.values()),
            now - f.last_line,
            kinds,
            f.total,
        )
        f.unreported.clear()
        f.last_line = now

    def close(self) -> None:
        """Summarise the failures not yet in a log line (at shutdown)."""
        now = self.clock()
        for (model, version), f in self._by.items():
            if f.unreported:
                self._summary(model, version, f, now)


class ShadowMirror:
    """Mirrors requests to shadow models from a bounded queue: a slow or failing shadow drops mirrors (counted),
    never delays or fails the primary answer."""

    def __init__(
        self,
        shadows: Callable[[str], tuple[LoadedModel, float] | None],
        log: ShadowLog,
        metrics: Any = None,
        seed: int = 0,
        max_pending: int = 256,
        concurrency: int = 4,
        summary_s: float = SUMMARY_EVERY_S,
    ) -> None:
        self.shadows = shadows
        self.log = log
        self.metrics = metrics
        self.seed = seed
        self.concurrency = concurrency
        self.queue: asyncio.Queue[tuple[Any, ...]] | None = None
        self.max_pending = max_pending
        self.failures = FailureLog(summary_s)
        self.taking = True  # False from the shutdown signal on: no new mirrors
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[asyncio.Task[None], tuple[str, str]] = {}  # worker task -> (model, shadow version)
        self._flushing: asyncio.Future[Any] | None = None

    def _count(self, model: str, version: str, outcome: str) -> None:
        """Count one mirror outcome: mirrored, dropped (queue full, shutting down) or cancelled."""
        if self.metrics is not None:
            self.metrics.shadow(model, version, outcome)

    def stop_taking(self) -> None:
        """Take no new mirrors (at the shutdown signal); the queued ones still run until aclose's deadline."""
        self.taking = False

    def offer(
        self,
        model: LoadedModel,
        arrays: dict[str, np.ndarray],
        rows: int,
        outputs: dict[str, np.ndarray],
        latency_s: float,
        request_id: str,
    ) -> None:
        """Queue a mirror of this answered request when the model has a shadow and the draw selects it."""
        entry = self.shadows(model.name)
        if entry is None or share(request_id, self.seed ^ SHADOW_SALT) >= entry[1]:
            return
        if not self.taking:
            self._count(model.name, entry[0].version, "dropped")
            return
        if self.queue is None:
            self.queue = asyncio.Queue(self.max_pending)
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._worker()) for _ in range(self.concurrency)]
        try:
            self.queue.put_nowait((time.time(), request_id, model, arrays, rows, outputs, latency_s))
        except asyncio.QueueFull:
            self._count(model.name, entry[0].version, "dropped")

    async def _worker(self) -> None:
        """Run queued mirrors one at a time (several workers let the shadow's batcher merge them)."""
        assert self.queue is not None
        me = asyncio.current_task()
        assert me is not None
        while True:
            item = await self.queue.get()
            entry = self.shadows(item[2].name)
            version = entry[0].version if entry else ""
            self._running[me] = (item[2].name, version)
            try:
                await self._mirror(*item)
            except Exception as exc:  # noqa: BLE001 - a shadow failure only shows in its metrics and a summary
                if self.metrics is not None:
                    self.metrics.shadow_failed(item[2].name, version, type(exc).__name__)
                self.failures.failed(item[2].name, version, type(exc).__name__, str(exc))
            finally:
                self._running.pop(me, None)
                self.queue.task_done()

    async def _mirror(
        self,
        ts: float,
        request_id: str,
        primary: LoadedModel,
        arrays: dict[str, np.ndarray],
        rows: int,
        outputs: dict[str, np.ndarray],
        latency_s: float,
    ) -> None:
        """Run one mirror on the shadow and record the comparison rows."""
        entry = self.shadows(primary.name)
        if entry is None:
            return
        shadow = entry[0]
        t0 = time.perf_counter()
        s_out: dict[str, np.ndarray] = await shadow.batcher.submit(arrays, rows)
        s_latency = time.perf_counter() - t0
        cols = compare(primary, outputs, shadow, s_out, rows)
        when = datetime.fromtimestamp(ts, UTC)
        records = [
            {
                "_ts": when,
                "_request_id": request_id,
                "_row": i,
                "model": primary.name,
                "primary_version": primary.version,
                "shadow_version": shadow.version,
                **{k: (None if v is None else v[i]) for k, v in cols.items() if k != "abs_diff"},
                "abs_diff": float(cols["abs_diff"][i]),
                "primary_latency_ms": latency_s * 1000.0,
                "shadow_latency_ms": s_latency * 1000.0,
            }
            for i in range(rows)
        ]
        self._count(primary.name, shadow.version, "mirrored")
        if self.log.add(records) and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.get_running_loop().run_in_executor(None, self.log.flush)

    async def drain(self, deadline: float) -> bool:
        """Take no new mirrors and wait, until `deadline` (time.monotonic()), for the queued ones; True if all ran."""
        self.stop_taking()
        if self.queue is None:
            return True
        try:
            await asyncio.wait_for(self.queue.join(), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return False
        return True

    async def aclose(self, deadline: float | None = None, cancel_runs: Callable[[], None] | None = None) -> None:
        """Drain until `deadline` (default: 10 s from now), cancel what is left (counted as cancelled) and the
        shadows' model runs (`cancel_runs`, e.g. Repository.cancel_shadows), then write what is buffered."""
        drained = await self.drain(time.monotonic() + 10.0 if deadline is None else deadline)
        left: list[tuple[str, str]] = list(self._running.values())
        if self.queue is not None:
            while not self.queue.empty():
                item = self.queue.get_nowait()
                self.queue.task_done()
                entry = self.shadows(item[2].name)
                left.append((item[2].name, entry[0].version if entry else ""))
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if cancel_runs is not None:  # before the final write: a cancelled run stops taking the CPU at once
            cancel_runs()
        for model, version in left:
            self._count(model, version, "cancelled")
        if not drained and left:
            log.warning(
                "shadow: %d mirrors still queued or running when the shutdown grace ran out are cancelled", len(left)
            )
        self.failures.close()
        if self._flushing is not None:
            await self._flushing
        await asyncio.get_running_loop().run_in_executor(None, self.log.flush)
