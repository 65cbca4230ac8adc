"""Which registry models a many-model server (`roost serve --all`, `--models GLOB`, `--alias NAME`) may serve, and
what a request's model name means: `churn@prod`, `churn` (its default alias) or `churn` + a version. The registry is
read with one list_models call, again only when its cheap change marker moves (roost.registry.api.models_marker)."""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "prod"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes of a size such as `512MB` (10^6), `512MiB` or `512M` (2^20), `2GB`, `1.5GiB` or `1000000`."""
    from roost.errors import RoostError

    m = _SIZE.match(text)
    if m is None:
        raise RoostError(f"--max-memory {text!r} is not a size", hint="e.g. --max-memory 512MB (or 512MiB, 2GB)")
    number, unit, binary, b = m.groups()
    base = 1000 if unit and b and not binary else 1024  # MB = 10^6; MiB and a bare M = 2^20 (as docker reads it)
    size = int(float(number) * base ** _POWERS[unit.lower()])
    if size <= 0:
        raise RoostError(f"--max-memory must be positive, got {text!r}")
    return size


@dataclass(frozen=True)
class Selection:
    """The registry filter: model name globs (none: every model) and alias names (none: every alias)."""

    globs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def model_ok(self, name: str) -> bool:
        """Whether model `name` passes the --models globs."""
        return not self.globs or any(fnmatch.fnmatchcase(name, g) for g in self.globs)

    def alias_ok(self, alias: str) -> bool:
        """Whether `alias` passes the --alias names."""
        return not self.aliases or alias in self.aliases

    def describe(self) -> str:
        """The filter in words, for logs and 404 messages."""
        models = "every model" if not self.globs else "models " + ", ".join(repr(g) for g in self.globs)
        aliases = "any alias" if not self.aliases else "alias " + " or ".join(repr(a) for a in self.aliases)
        return f"{models} with {aliases}"


@dataclass
class Snapshot:
    """The served part of the registry at one moment: each model's served aliases and its latest version."""

    aliases: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> {alias: version}
    latest: dict[str, int] = field(default_factory=dict)  # model -> its latest version number
    marker: tuple[int, ...] | None = None

    @classmethod
    def read(cls, selection: Selection) -> Snapshot:
        """The registry now (list_models: one read), filtered by `selection`."""
        from roost.registry.api import list_models, models_marker

        marker = models_marker()
        snap = cls(marker=marker)
        for m in list_models():
            name = str(m["name"])
            served = {a: int(v) for a, v in (m.get("aliases") or {}).items() if selection.alias_ok(a)}
            if selection.model_ok(name) and served:
                snap.aliases[name] = served
                snap.latest[name] = int(m.get("latest_version") or 0)
        return snap

    def default_alias(self, model: str, preferred: tuple[str, ...]) -> str | None:
        """The alias a bare `model` means: the first --alias it has, else `prod`, else its only alias; else None."""
        have = self.aliases.get(model, {})
        for alias in (*preferred, DEFAULT_ALIAS):
            if alias in have:
                return alias
        return next(iter(have)) if len(have) == 1 else None

    def moved(self, before: Snapshot) -> list[tuple[str, str, int, int]]:
        """(model, alias, old version, new version) of each alias that points elsewhere than in `before`."""
        out = []
        for model, aliases in self.aliases.items():
            old = before.aliases.get(model, {})
            out += [(model, a, old[a], v) for a, v in aliases.items() if a in old and old[a] != v]
        return out

    def entries(self) -> list[tuple[str, str, int]]:
        """(model, alias, version) of every served alias, sorted."""
        return sorted((m, a, v) for m, aliases in self.aliases.items() for a, v in aliases.items())


def split_name(text: str) -> tuple[str, str | None]:
    """`churn@prod` -> (churn, prod); `churn` -> (churn, None)."""
    model, sep, alias = text.partition("@")
    return model, (alias if sep else None)


class CatalogMetrics:
    """Per-model load, eviction and swap counts of a many-model server, and its resident models (summed over
    the fleet's workers like the other serving metrics)."""

    def __init__(self, metrics: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        reg = None if metrics.multiproc_dir else metrics.registry
        self.loads = Counter(
            "roost_model_loads_total",
            "Model loads on demand, by model and outcome (ok, failed)",
            ["model", "outcome"],
            registry=reg,
        )
        self.load_seconds = Counter(
            "roost_model_load_seconds_total",
            "Seconds spent loading each model (with its loads: the mean)",
            ["model"],
            registry=reg,
        )
        self.load_latency = Histogram(
            "roost_model_load_latency_seconds",
            "Seconds one on-demand load took (resolve, session, warm-up)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=reg,
        )
        self.evictions = Counter(
            "roost_model_evictions_total",
            "Models evicted (least recently used) to stay under --max-memory",
            ["model"],
            registry=reg,
        )
        self.alias_swaps = metrics.swaps  # the fleet's roost_model_swaps_total
        self.resident_models = Gauge(
            "roost_models_resident", "Model versions loaded now", multiprocess_mode="livesum", registry=reg
        )
        self.resident_bytes = Gauge(
            "roost_models_resident_bytes",
            "Memory of the loaded model versions (RSS growth of their loads)",
            multiprocess_mode="livesum",
            registry=reg,
        )

    def load(self, model: str, seconds: float, ok: bool) -> None:
        """Count one load of `model` and its duration."""
        self.loads.labels(model, "ok" if ok else "failed").inc()
        self.load_seconds.labels(model).inc(seconds)
        self.load_latency.observe(seconds)

    def evicted(self, model: str) -> None:
        """Count one eviction of `model`."""
        self.evictions.labels(model).inc()

    def swapped(self, model: str) -> None:
        """Count one hot swap of `model` (an alias moved to a version now loaded)."""
        self.alias_swaps.labels(model).inc()

    def resident(self, count: int, used: int) -> None:
        """Set this worker's resident model count and bytes."""
        self.resident_models.set(count)
        self.resident_bytes.set(used)
