"""Many models per worker: registry models loaded on their first request, evicted least-recently-used under a
memory budget (never one with a request in flight), the registry watched so new versions and moved aliases are
served without a restart. Loaded models are keyed by (model, version): aliases pointing at one version share it,
and a moved alias switches to the new version once it is loaded and warmed (the old one ages out of the cache)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from roost.serve.catalog import CatalogMetrics, Selection, Snapshot, split_name
from roost.serve.codec import HTTPError
from roost.serve.loader import LoadedModel, ModelSpec, Resolved, preload, resolve
from roost.serve.metrics import Metrics
from roost.serve.repository import Repository

log = logging.getLogger(__name__)

Key = tuple[str, int]  # (model, version)
# a loaded model's memory: the RSS growth of its load (loads run one at a time), at least this much plus its ONNX
# file's size (a load that reuses freed heap grows RSS by less than it holds). Measured: a 30-input logreg package
# (4.7 kB) grows RSS by ~340 kB (session, its allocator and the batcher thread): docs/serving.md; ~150 kB when it
# is served through its matrix serving graph (roost.serve.matrixgraph: 3 nodes instead of 34).
MIN_OVERHEAD_BYTES = 256 << 10
# the model the request being handled has pinned (lookup answers it, even if its alias moved in between)
_PINNED: ContextVar[LoadedModel | None] = ContextVar("roost_pinned_model", default=None)
RETRY_FAILED_S = 5.0  # a failed load answers 503 with its reason for this long before the next request retries


@dataclass
class Entry:
    """One resident model version: the loaded model, its measured memory and the requests using it now."""

    model: LoadedModel
    cost: int
    pins: int = 0


def _rss() -> int:
    """This process's resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _warm_runtime() -> None:
    """Start ONNX Runtime's environment with a one-node graph at startup (~10 MB of RSS, once per process), so that
    the first model loaded is not charged for it."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "warm", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess.run(None, {"x": np.zeros(1, np.float32)})  # (the first run sets up the CPU allocator's arena)


def _trim() -> None:
    """Give freed heap back to the OS after evictions (glibc keeps it otherwise: RSS would never go down)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # another C library: nothing to trim
        return
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


class LazyRepository(Repository):
    """The models of a registry selection, loaded on demand under a memory budget (bytes; None: no limit)."""

    def __init__(
        self,
        selection: Selection,
        budget: int | None = None,
        threads: Any = 1,
        max_batch: int = 64,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__([], threads=threads, max_batch=max_batch, metrics=metrics)
        self.selection = selection
        self.budget = budget
        self.snapshot = Snapshot()
        self.resident: OrderedDict[Key, Entry] = OrderedDict()  # least recently used first
        self.loading: dict[Key, asyncio.Future[Entry]] = {}
        self.failed: dict[Key, tuple[str, int, float]] = {}  # key -> (reason, HTTP status, when)
        self.evicted: set[Key] = set()
        self.used = 0
        self.cm = CatalogMetrics(metrics) if metrics is not None else None
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="roost-load")  # one load at a time: RSS deltas

    # ---- naming -------------------------------------------------------------------------------------------
    def load_all(self) -> None:
        """Read the registry selection (nothing is loaded before its first request)."""
        self.snapshot = Snapshot.read(self.selection)
        _warm_runtime()
        log.info(
            "serving %d registry models (%s), loaded on first request",
            len(self.snapshot.aliases),
            self.selection.describe(),
        )

    def target(self, name: str, version: str | None) -> Key:
        """The (model, version) a request's name (`churn`, `churn@prod`) and version mean, or a 404 saying why."""
        model, alias = split_name(name)
        snap = self.snapshot
        aliases = snap.aliases.get(model)
        if aliases is None:
            raise HTTPError(
                404,
                f"model {model!r} is not served here: this server serves {self.selection.describe()} from the "
                f"registry ({len(snap.aliases)} models; POST /v2/repository/index lists them)",
            )
        if alias is not None and alias not in aliases:
            have = ", ".join(f"{model}@{a}" for a in sorted(aliases))
            raise HTTPError(404, f"model {model!r} has no served alias {alias!r}; served: {have}")
        if version is not None:
            latest = snap.latest.get(model, 0)
            if not (version.isdigit() and 1 <= int(version) <= latest):
                raise HTTPError(404, f"model {model!r} has no version {version!r} (latest is {latest})")
            if alias is not None and aliases[alias] != int(version):
                raise HTTPError(404, f"{model}@{alias} is version {aliases[alias]}, not {version}")
            return model, int(version)
        if alias is None:
            alias = snap.default_alias(model, self.selection.aliases)
            if alias is None:
                have = ", ".join(f"{model}@{a}" for a in sorted(aliases))
                raise HTTPError(404, f"model {model!r} has several aliases and no default (prod); ask for one: {have}")
        return model, aliases[alias]

    def get(self, name: str) -> LoadedModel | None:
        """The resident model a name means now, or None (unknown or not loaded)."""
        try:
            entry = self.resident.get(self.target(name, None))
        except HTTPError:
            return None
        return entry.model if entry is not None else None

    def lookup(self, name: str, version: str | None) -> LoadedModel:
        """The resident model for a request (loaded by `use` first), or a 404/503 saying why not."""
        pinned = _PINNED.get()
        if pinned is not None and pinned.name == split_name(name)[0]:
            return pinned
        key = self.target(name, version)
        entry = self.resident.get(key)
        if entry is None:
            raise HTTPError(503, f"model {key[0]} version {key[1]} is not loaded in this worker; retry")
        return entry.model

    @property
    def names(self) -> list[str]:
        """Every served `model@alias`."""
        return [f"{m}@{a}" for m, a, _ in self.snapshot.entries()]

    # ---- loading and eviction -----------------------------------------------------------------------------
    @asynccontextmanager
    async def use(self, name: str, version: str | None) -> AsyncIterator[LoadedModel]:
        """The model for a request, loaded if needed and kept from eviction until the request is answered."""
        key = self.target(name, version)
        entry = await self.ensure(key)
        entry.pins += 1
        self.resident.move_to_end(key)
        token = _PINNED.set(entry.model)
        try:
            yield entry.model
        finally:
            _PINNED.reset(token)
            entry.pins -= 1
            if self.budget is not None and self.used > self.budget and not entry.pins:
                self._evict_for(0)

    async def ensure(self, key: Key) -> Entry:
        """The resident entry of `key`: loaded once however many requests ask at the same time."""
        while True:
            entry = self.resident.get(key)
            if entry is not None:
                return entry
            fut = self.loading.get(key)
            if fut is None:
                failed = self.failed.get(key)
                if failed is not None and time.monotonic() - failed[2] < RETRY_FAILED_S:
                    raise HTTPError(failed[1], failed[0])
                fut = self.loading[key] = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().create_task(self._load_key(key, fut))
            entry = await asyncio.shield(fut)
            if self.resident.get(key) is entry:  # (else evicted before this request woke up: load again)
                return entry

    async def _load_key(self, key: Key, fut: asyncio.Future[Entry]) -> None:
        """Resolve and load one version off the event loop, making room under the budget first."""
        loop = asyncio.get_running_loop()
        model, version = key
        t0 = time.perf_counter()
        try:
            spec = ModelSpec(name=model, source=f"{model}/{version}", kind="version")
            resolved = await loop.run_in_executor(self._loader, resolve, spec)
            estimate = MIN_OVERHEAD_BYTES + resolved.package.onnx_path.stat().st_size
            gone = self._evict_for(estimate)
            loaded, grew = await loop.run_in_executor(self._loader, self._load_measured, resolved, gone)
        except Exception as exc:  # noqa: BLE001 - a broken package fails its own requests, not the others'
            from roost.errors import NotFoundError, RoostError

            status = 404 if isinstance(exc, NotFoundError) else 503
            text = f"{exc}" + (f" ({exc.hint})" if isinstance(exc, RoostError) and exc.hint else "")
            reason = f"model {model} version {version} failed to load: {text}"
            log.error("%s", reason)
            self.failed[key] = (reason, status, time.monotonic())
            if self.cm is not None:
                self.cm.load(model, time.perf_counter() - t0, ok=False)
            fut.set_exception(HTTPError(status, reason))
            fut.exception()  # (retrieved: a load nobody waits for any more logs nothing)
            return
        finally:
            self.loading.pop(key, None)
        entry = Entry(loaded, max(grew, estimate))
        self.resident[key] = entry
        self.used += entry.cost
        self.failed.pop(key, None)
        self.evicted.discard(key)
        self.generation += 1
        seconds = time.perf_counter() - t0
        if self.cm is not None:
            self.cm.load(model, seconds, ok=True)
            self.cm.resident(len(self.resident), self.used)
        if self.metrics is not None:
            self.metrics.loaded(model, str(version))
        log.info(
            "loaded %s version %s in %.0f ms (%d kB; %d resident)",
            model,
            version,
            seconds * 1000,
            entry.cost >> 10,
            len(self.resident),
        )
        fut.set_result(entry)

    def _load_measured(self, resolved: Resolved, gone: list[LoadedModel]) -> tuple[LoadedModel, int]:
        """(in the load thread) Free the evicted models, then load one and return it with the RSS it added."""
        self._free(gone)
        preload()
        before = _rss()
        model = self._load(resolved)
        return model, max(0, _rss() - before)

    def _evict_for(self, need: int) -> list[LoadedModel]:
        """Evict least-recently-used idle models until `need` more bytes fit the budget; returns them (to free)."""
        gone: list[LoadedModel] = []
        if self.budget is None:
            return gone
        for key in list(self.resident):
            if self.used + need <= self.budget:
                break
            entry = self.resident[key]
            if entry.pins:
                continue  # a request is using it
            del self.resident[key]
            self.used -= entry.cost
            self.evicted.add(key)
            gone.append(entry.model)
            if self.cm is not None:
                self.cm.evicted(key[0])
            if self.metrics is not None:
                self.metrics.version_loaded.labels(key[0], str(key[1])).set(0)
            log.info("evicted %s version %s (least recently used; %d kB)", key[0], key[1], entry.cost >> 10)
        if self.used + need > self.budget and self.used:
            log.warning("memory budget exceeded: %d kB in use by models with requests in flight", self.used >> 10)
        if gone and self.cm is not None:
            self.cm.resident(len(self.resident), self.used)
        if gone and need == 0:  # evicted after a request: free them in the load thread
            self._loader.submit(self._free, gone)
        return gone

    def _free(self, gone: list[LoadedModel]) -> None:
        """(in the load thread) Stop evicted models, drop them and give their memory back to the OS."""
        if not gone:
            return
        for m in gone:
            m.close()
            m.batcher.join(2.0)
        del gone[:]
        _trim()

    # ---- the registry watcher -----------------------------------------------------------------------------
    async def watch(self, interval: float = 2.0) -> None:
        """Re-read the selection when the registry's change marker moves; preload moved aliases (runs forever)."""
        while True:
            await asyncio.sleep(interval)
            await self.refresh()

    async def refresh(self, force: bool = False) -> list[dict[str, Any]]:
        """Read the registry now (when its marker moved, or `force`) and switch to it; returns the alias moves."""
        from roost.registry.api import models_marker

        loop = asyncio.get_running_loop()
        try:
            marker = await loop.run_in_executor(None, models_marker)
            if not force and marker is not None and marker == self.snapshot.marker:
                return []
            snap = await loop.run_in_executor(None, Snapshot.read, self.selection)
        except Exception as exc:  # noqa: BLE001 - a registry hiccup must not stop the watcher
            log.warning("cannot read the registry: %s", exc)
            return []
        out = []
        for model, alias, old, new in snap.moved(self.snapshot):
            report: dict[str, Any] = {"name": f"{model}@{alias}", "old_version": str(old), "version": str(new)}
            if (model, old) in self.resident:  # warm the new version before the alias switches to it
                try:
                    await self.ensure((model, new))
                except HTTPError as exc:
                    snap.aliases[model][alias] = old  # keep serving the old version; retried at the next poll
                    snap.marker = None
                    out.append({**report, "version": str(old), "swapped": False, "error": exc.message})
                    continue
                if self.cm is not None:
                    self.cm.swapped(model)
            out.append({**report, "swapped": True})
            log.info("%s@%s moved: version %s -> %s", model, alias, old, new)
        added = sorted(set(snap.aliases) - set(self.snapshot.aliases))
        if added:
            log.info("new in the registry: %s", ", ".join(added[:20]) + (" ..." if len(added) > 20 else ""))
        self.snapshot = snap
        self.generation += 1
        return out

    async def reload(self, names: list[str] | None = None, force: bool = False) -> list[dict[str, Any]]:
        """POST /admin/reload and SIGHUP: read the registry now."""
        return await self.refresh(force=True)

    # ---- state --------------------------------------------------------------------------------------------
    def state(self, key: Key) -> tuple[str, str]:
        """(Triton state, reason) of one version in this worker."""
        if key in self.resident:
            return "READY", ""
        if key in self.loading:
            return "LOADING", ""
        if key in self.failed:
            return "UNAVAILABLE", self.failed[key][0]
        if key in self.evicted:
            return "UNAVAILABLE", "evicted (least recently used); loads on its next request"
        return "UNAVAILABLE", "not loaded yet; loads on its first request"

    def index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        """The repository index: one row per served model@alias and per loaded version no alias points at."""
        rows = []
        aliased = set()
        for model, alias, version in self.snapshot.entries():
            aliased.add((model, version))
            state, reason = self.state((model, version))
            rows.append({"name": f"{model}@{alias}", "version": str(version), "state": state, "reason": reason})
        for model, version in self.resident:
            if (model, version) not in aliased:
                rows.append({"name": model, "version": str(version), "state": "READY", "reason": ""})
        return [r for r in rows if r["state"] == "READY"] if ready_only else rows

    def describe(self) -> list[dict[str, Any]]:
        """The resident models (for /admin/status), least recently used first."""
        return [{**e.model.describe(), "bytes": e.cost, "in_flight": e.pins} for e in self.resident.values()]

    def close(self, timeout: float | None = None) -> bool:
        """Stop every resident model's batcher and wait up to `timeout` seconds for their threads to end."""
        for entry in self.resident.values():
            entry.model.close()
        self._loader.shutdown(wait=False, cancel_futures=True)
        if timeout is None:
            return False
        deadline = time.monotonic() + timeout
        return all(e.model.batcher.join(deadline - time.monotonic()) for e in self.resident.values())
