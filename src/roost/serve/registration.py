"""A serving fleet's entry in the registry: registered at start, heartbeat every interval, stopped at shutdown.

Each beat also rolls up the request-log files this fleet's workers finished since the last one (roost.serve.traffic)
and the error answers counted since (the Prometheus counters the workers share: every error, not a sample). The
first beat also rolls up what an earlier fleet left in the same log folder (killed before its last beat reached the
registry): the stored offsets make this exact and idempotent. The
registry being unreachable never stops serving: every step logs a warning and is retried at the next beat.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_ENV = "ROOST_FLEET_HEARTBEAT_S"
DEFAULT_INTERVAL_S = 10.0
PRUNE_EVERY = 360  # beats between two prunes of old traffic rows and offsets (an hour at 10 s)


def interval_s() -> float:
    """The heartbeat period: ROOST_FLEET_HEARTBEAT_S, else 10 s."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S))
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if 0.05 <= value <= 3600 else DEFAULT_INTERVAL_S


def served_models(cfg: Any) -> list[dict[str, Any]]:
    """What a ServeConfig serves now: [{model, version, source, role, share}] (versions resolved in the registry;
    None when a name cannot be resolved now). Primaries get the share their canaries leave; shadows the share
    mirrored."""
    from roost.serve.loader import current_version, parse_spec
    from roost.serve.rollout import parse_canary, parse_shadow

    def version(spec: Any) -> str | None:
        if spec.kind == "version":
            return str(spec.source.rsplit("/", 1)[1])
        if spec.kind == "path":
            return "1"
        try:
            return current_version(spec)
        except Exception:  # noqa: BLE001 - an unreachable registry or a moved alias: shown as unknown
            return None

    canaries = [parse_canary(c) for c in cfg.canary]
    out = []
    for m in cfg.models:
        spec = parse_spec(m)
        left = 100.0 - sum(c.percent for c in canaries if c.spec.name == spec.name)
        out.append({"model": spec.name, "version": version(spec), "source": m, "role": "primary", "share": left})
    for c in canaries:
        out.append(
            {
                "model": c.spec.name,
                "version": version(c.spec),
                "source": c.spec.source,
                "role": "canary",
                "share": c.percent,
            }
        )
    for item in cfg.shadow:
        c = parse_shadow(item)
        out.append(
            {
                "model": c.spec.name,
                "version": version(c.spec),
                "source": c.spec.source,
                "role": "shadow",
                "share": c.percent,
            }
        )
    return out


def error_counts(prom_dir: str | None) -> dict[str, float]:
    """Error answers so far per model, summed over the workers (roost_errors_total in the multiprocess folder)."""
    if not prom_dir:
        return {}
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=prom_dir)  # type: ignore[no-untyped-call]  # untyped library
    out: dict[str, float] = {}
    for metric in reg.collect():
        for sample in metric.samples:
            if sample.name == "roost_errors_total" and sample.labels.get("model"):
                out[sample.labels["model"]] = out.get(sample.labels["model"], 0.0) + sample.value
    return out


class FleetRegistration:
    """Keeps one fleet registered in the workspace's registry while it serves (a background thread)."""

    def __init__(
        self,
        models: Callable[[], list[dict[str, Any]]],
        host: str,
        port: int,
        log_dir: Path | None = None,
        log_rate: float = 0.0,
        pids: Callable[[], set[int]] | None = None,
        prom_dir: str | None = None,
        interval: float | None = None,
        store: Any = None,
    ) -> None:
        self.fleet_id = uuid.uuid4().hex
        self.models, self.host, self.port = models, host, port
        self.log_dir, self.log_rate, self.pids, self.prom_dir = log_dir, log_rate, pids, prom_dir
        self.interval = interval if interval is not None else interval_s()
        self._store = store
        self._registered = False
        self._failures = 0
        self._beats = 0
        self._served: list[dict[str, Any]] = []
        self._errors_seen: dict[str, float] = {}
        self._caught_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="roost-fleet-registry", daemon=True)

    def store(self) -> Any:
        """The registry store (the workspace's, unless one was given)."""
        if self._store is None:
            from roost.registry.store import default_store

            self._store = default_store("registering a serving fleet")
        return self._store

    def start(self) -> FleetRegistration:
        """Start heartbeating: the first beat registers (retried every beat while the registry cannot be reached)."""
        self._thread.start()
        return self

    def beat(self) -> None:
        """One heartbeat: register if not yet, record what is served, roll up new request logs and errors."""
        from roost.registry import fleets

        try:
            served = self.models()
            if not self._registered:
                fleets.register(
                    self.store(),
                    self.fleet_id,
                    self.host,
                    self.port,
                    os.getpid(),
                    served,
                    self.interval,
                    self.log_rate,
                )
                self._registered, self._served = True, served
                log.info("fleet %s registered in the registry", self.fleet_id[:8])
            else:
                fleets.heartbeat(self.store(), self.fleet_id, served if served != self._served else None)
                self._served = served
            self.roll_up()
            self._beats += 1
            if self._beats % PRUNE_EVERY == 1:  # at the first beat, then about hourly
                fleets.prune(self.store(), int(time.time() // 60))
            self._failures = 0
        except Exception as exc:  # noqa: BLE001 - the registry must never stop serving
            self._failures += 1
            if self._failures > 1 and self._failures % 30:  # told once, then every 30th failed beat
                log.debug("fleet registry: %s", exc)
                return
            log.warning(
                "fleet registry: %s: %s (serving goes on; retrying in %.0f s)", type(exc).__name__, exc, self.interval
            )

    def roll_up(self) -> None:
        """Roll up the request-log files finished since the last beat, and the error answers counted since."""
        from roost.registry import fleets
        from roost.registry.fleets import Rollup
        from roost.serve import traffic

        names = {m["model"] for m in self._served}
        if self.log_dir is None:  # no request log: no traffic (errors alone would read as a 100 % error rate)
            return
        if not self._caught_up:  # first beat: the files an earlier fleet finished but never rolled up (killed)
            got = traffic.catch_up_dir(self.store(), self.fleet_id, self.log_dir, names, default_rate=self.log_rate)
            if got:
                log.info("fleet %s rolled up %d request-log rows an earlier fleet left", self.fleet_id[:8], got)
            self._caught_up = True
        pids = self.pids() if self.pids is not None else None
        traffic.catch_up(
            self.store(), self.fleet_id, traffic.log_files(self.log_dir, names, pids), default_rate=self.log_rate
        )
        counts = error_counts(self.prom_dir)
        minute = int(time.time() // 60)
        new: dict[tuple[str, str, int], Rollup] = {}
        for model, n in counts.items():
            delta = int(n - self._errors_seen.get(model, 0.0))
            if delta > 0 and model in names:
                primary = next((m for m in self._served if m["model"] == model and m["role"] == "primary"), None)
                ver = str(primary["version"]) if primary and primary["version"] is not None else "?"
                new[(model, ver, minute)] = Rollup(errors=delta)
        if new:
            fleets.record(self.store(), self.fleet_id, new, {})
        self._errors_seen.update(counts)

    def _loop(self) -> None:
        self.beat()
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        """Stop heartbeating, roll up what the workers flushed at their shutdown, and mark the fleet stopped."""
        from roost.registry import fleets

        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if not self._registered:
            return
        try:
            self.roll_up()
            fleets.stopped(self.store(), self.fleet_id)
            log.info("fleet %s marked stopped in the registry", self.fleet_id[:8])
        except Exception as exc:  # noqa: BLE001 - shutting down: tell, never raise
            log.warning("fleet registry: cannot mark the fleet stopped: %s: %s", type(exc).__name__, exc)


def keep_registered(
    models: list[dict[str, Any]], host: str, port: int, log_dir: Path | None = None, log_rate: float = 0.0
) -> FleetRegistration:
    """Register a fleet that serves `models` ([{model, version, role, share}]) and heartbeat it until .stop()
    (in-process serving, e.g. the demo); every request-log file under log_dir is rolled up."""
    return FleetRegistration(lambda: list(models), host, port, log_dir, log_rate).start()
