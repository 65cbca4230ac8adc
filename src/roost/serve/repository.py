"""The models a worker serves, by name; hot swap on reload or when a watched registry alias moves."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from roost.serve.loader import LoadedModel, ModelSpec, Resolved, current_version, load, resolve
from roost.serve.metrics import Metrics

log = logging.getLogger(__name__)

# how long a replaced model keeps taking requests that were validated against it before the swap
RETIRE_AFTER_S = 5.0


class ModelSlot:
    """One served name: the model version taking traffic now, swapped atomically on reload."""

    def __init__(self, spec: ModelSpec, model: LoadedModel) -> None:
        self.spec = spec
        self.current = model
        self.lock: asyncio.Lock | None = None
        self.last_error: str | None = None


class Repository:
    """Loads the served models, answers lookups by name and swaps in new versions without dropping requests."""

    def __init__(
        self,
        specs: list[ModelSpec],
        threads: int | Callable[[int], int] = 1,
        max_batch: int = 64,
        metrics: Metrics | None = None,
    ) -> None:
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            from roost.errors import RoostError

            raise RoostError(
                f"two models would be served as {dupes[0]!r}",
                hint="give one another name with NAME=SPEC, e.g. churn_v2=churn/2",
            )
        self.specs = specs
        self.threads = threads
        self.max_batch = max_batch
        self.metrics = metrics
        self.slots: dict[str, ModelSlot] = {}
        self.canaries: dict[str, tuple[ModelSlot, float]] = {}  # served name -> (canary slot, percent)
        self.canary_specs: dict[str, tuple[ModelSpec, float]] = {}  # set before load_all (see add_canary)
        self.shadows: dict[str, tuple[ModelSlot, float]] = {}  # served name -> (shadow slot, percent mirrored)
        self.shadow_specs: dict[str, tuple[ModelSpec, float]] = {}
        self.generation = 0  # bumped on every swap (cached documents built from the models go stale)

    def _load(self, resolved: Resolved) -> LoadedModel:
        """Load and warm up one resolved package."""
        on_batch = self.metrics.batch if self.metrics is not None else None
        threads = self.threads
        if callable(threads):
            threads = threads(resolved.package.onnx_path.stat().st_size)
        return load(resolved, threads=threads, max_batch=self.max_batch, on_batch=on_batch)

    def load_all(self) -> None:
        """Resolve and load every model (blocking; done before the worker takes traffic)."""
        for spec in self.specs:
            model = self._load(resolve(spec))
            self.slots[spec.name] = ModelSlot(spec, model)
            if self.metrics is not None:
                self.metrics.loaded(spec.name, model.version)
            log.info("loaded %s version %s from %s", spec.name, model.version, model.package.path)
        for name, (spec, percent) in self.canary_specs.items():
            self._load_canary(name, spec, percent)
        for name, (spec, percent) in self.shadow_specs.items():
            self._load_canary(name, spec, percent, self.shadows, "--shadow")

    def add_canary(self, spec: ModelSpec, percent: float) -> None:
        """Serve `spec` as a canary taking `percent` % of the requests to the model of the same name."""
        self.canary_specs[spec.name] = (spec, percent)

    def add_shadow(self, spec: ModelSpec, percent: float) -> None:
        """Mirror `percent` % of the requests to the model of the same name to `spec` (answers compared, not sent)."""
        self.shadow_specs[spec.name] = (spec, percent)

    def _load_canary(
        self,
        name: str,
        spec: ModelSpec,
        percent: float,
        into: dict[str, tuple[ModelSlot, float]] | None = None,
        flag: str = "--canary",
    ) -> None:
        """Load one canary (or shadow) beside its primary (same served name, its own version)."""
        from roost.errors import RoostError
        from roost.serve.rollout import check_compatible

        primary = self.get(name)
        if primary is None:
            raise RoostError(
                f"{flag} {spec.source!r}: no model is served as {name!r}",
                hint=f"serve the primary too, e.g. roost serve {name}@prod {flag} {spec.source}=10",
            )
        model = self._load(resolve(spec))
        check_compatible(primary, model)
        (self.canaries if into is None else into)[name] = (ModelSlot(spec, model), percent)
        if self.metrics is not None and into is None:
            self.metrics.loaded(name, model.version)
        log.info("loaded %s of %s: version %s, %g%% of requests", flag[2:], name, model.version, percent)

    def canary(self, name: str) -> tuple[LoadedModel, float] | None:
        """The canary of `name` now and its percent, or None."""
        entry = self.canaries.get(name)
        return (entry[0].current, entry[1]) if entry is not None else None

    def shadow(self, name: str) -> tuple[LoadedModel, float] | None:
        """The shadow of `name` now and the percent of requests mirrored to it, or None."""
        entry = self.shadows.get(name)
        return (entry[0].current, entry[1]) if entry is not None else None

    def all_slots(self) -> list[ModelSlot]:
        """Every slot: the served models, then their canaries and shadows."""
        return [*self.slots.values(), *(c[0] for c in self.canaries.values()), *(c[0] for c in self.shadows.values())]

    def get(self, name: str) -> LoadedModel | None:
        """The model serving `name` now, or None."""
        slot = self.slots.get(name)
        return slot.current if slot is not None else None

    @property
    def names(self) -> list[str]:
        """Served model names, in the order given."""
        return list(self.slots)

    async def reload(self, names: list[str] | None = None, force: bool = False) -> list[dict[str, Any]]:
        """Re-resolve models and swap in the ones whose version or package changed; returns what happened."""
        out: list[dict[str, Any]] = []
        for name in names or self.names:
            slot = self.slots.get(name)
            if slot is None:
                out.append({"name": name, "error": f"model {name!r} is not served"})
                continue
            out.append(await self._reload_slot(slot, force))
            entry = self.canaries.get(name)
            if entry is not None:
                out.append({**await self._reload_slot(entry[0], force), "canary": True})
            entry = self.shadows.get(name)
            if entry is not None:
                out.append({**await self._reload_slot(entry[0], force), "shadow": True})
        return out

    async def _reload_slot(self, slot: ModelSlot, force: bool) -> dict[str, Any]:
        """Load the new version beside the old one, warm it up, then switch traffic to it."""
        if slot.lock is None:
            slot.lock = asyncio.Lock()
        async with slot.lock:
            loop = asyncio.get_running_loop()
            old = slot.current
            report: dict[str, Any] = {"name": slot.spec.name, "old_version": old.version}
            try:
                resolved = await loop.run_in_executor(None, resolve, slot.spec, old.resolved)
                same = resolved.version == old.version and resolved.package.fingerprint == old.package.fingerprint
                if same and not force:
                    return {**report, "version": old.version, "swapped": False}
                new = await loop.run_in_executor(None, self._load, resolved)
            except Exception as exc:  # noqa: BLE001 - keep serving the old version
                slot.last_error = str(exc)
                log.error("reload of %s failed, still serving version %s: %s", slot.spec.name, old.version, exc)
                return {**report, "version": old.version, "swapped": False, "error": str(exc)}
            slot.current = new
            slot.last_error = None
            self.generation += 1
            loop.call_later(RETIRE_AFTER_S, old.close)
            if self.metrics is not None and slot is not self.shadows.get(slot.spec.name, (None,))[0]:
                self.metrics.loaded(slot.spec.name, new.version, old.version)
                if slot.spec.name in self.canaries:  # the other half of a canary split may still serve old
                    self.metrics.loaded(slot.spec.name, self.slots[slot.spec.name].current.version)
                    self.metrics.loaded(slot.spec.name, self.canaries[slot.spec.name][0].current.version)
            log.info("swapped %s: version %s -> %s", slot.spec.name, old.version, new.version)
            return {**report, "version": new.version, "swapped": True}

    async def watch(self, interval: float = 2.0) -> None:
        """Poll the registry for every name@alias model and hot-swap when the alias moves (runs forever)."""
        watched = [s for s in self.all_slots() if s.spec.watches_alias]
        if not watched:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            for slot in watched:
                try:
                    version = await loop.run_in_executor(None, current_version, slot.spec)
                except Exception as exc:  # noqa: BLE001 - a registry hiccup must not stop the watcher
                    log.warning("cannot poll %s: %s", slot.spec.source, exc)
                    continue
                if version is not None and version != slot.current.version:
                    await self._reload_slot(slot, force=False)

    def cancel_shadows(self) -> None:
        """Cancel the shadows' runs (in progress and queued): at shutdown, once their mirrors are given up."""
        for slot, _ in self.shadows.values():
            slot.current.cancel()

    def close(self, timeout: float | None = None) -> bool:
        """Stop every batcher (queued requests still run) and wait up to `timeout` seconds in all for their threads
        to end; True when none is running a model any more (a session is never freed under a run)."""
        for slot in self.all_slots():
            slot.current.close()
        if timeout is None:
            return False
        deadline = time.monotonic() + timeout
        return all(slot.current.batcher.join(deadline - time.monotonic()) for slot in self.all_slots())
