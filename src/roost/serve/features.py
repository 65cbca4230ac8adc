"""The online feature hook: requests that carry entity ids get their feature values from the feature store."""
from __future__ import annotations

import asyncio
import logging
from typing import Protocol, runtime_checkable

import numpy as np

from roost.serve.codec import HTTPError, bad, column
from roost.serve.signature import Package, TensorSpec

log = logging.getLogger(__name__)


@runtime_checkable
class FeatureFetcher(Protocol):
    """Reads feature values for entity ids from an online store."""

    def fetch(self, refs: list[str], entities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return one array per ref *field* ("view:field" -> "field"), rows aligned with the entity arrays."""
        ...


def default_fetcher() -> FeatureFetcher | None:
    """The workspace's online store as a fetcher, or None when the feature store is not available."""
    try:
        from roost.features import online  # type: ignore[attr-defined]
    except ImportError:
        return None
    make = getattr(online, "serving_fetcher", None)
    if make is None:
        return None
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - no store configured: serve without the hook
        log.warning("online feature store unavailable: %s", exc)
        return None


def needs_features(pkg: Package, arrays: dict[str, np.ndarray]) -> bool:
    """True when the model reads the feature store and the request sent entity ids instead of all features."""
    if not pkg.feature_refs or not pkg.entities:
        return False
    return any(e in arrays for e in pkg.entities) and any(s.name not in arrays for s in pkg.inputs)


def entity_spec(name: str, values: object) -> TensorSpec:
    """A spec for an entity-id input (not in the signature): strings stay strings, numbers become int64."""
    first = values[0] if isinstance(values, list) and values else values
    return TensorSpec(name, "string" if isinstance(first, str) else "int64", (-1,))


async def fill(pkg: Package, arrays: dict[str, np.ndarray], fetcher: FeatureFetcher | None) -> None:
    """Replace entity-id inputs by the model's features read from the online store (in place)."""
    if fetcher is None:
        raise bad(f"the request sends entity ids ({', '.join(e for e in pkg.entities if e in arrays)}) but this "
                  "server has no online feature store; send the feature values themselves")
    missing = [e for e in pkg.entities if e not in arrays]
    if missing:
        raise bad(f"entity id input {missing[0]!r} is missing; the model's entities are {pkg.entities}")
    model_inputs = {s.name for s in pkg.inputs}
    entities = {e: arrays[e] if e in model_inputs else arrays.pop(e) for e in pkg.entities}
    loop = asyncio.get_running_loop()
    try:
        fetched = await loop.run_in_executor(None, fetcher.fetch, pkg.feature_refs, entities)
    except HTTPError:
        raise
    except Exception as exc:  # noqa: BLE001 - store errors are reported, the worker lives on
        raise HTTPError(503, f"online feature store read failed: {exc}") from None
    for spec in pkg.inputs:
        if spec.name in arrays:
            continue
        if spec.name not in fetched:
            raise HTTPError(503, f"the online feature store returned no {spec.name!r}")
        value = fetched[spec.name]
        arrays[spec.name] = column(value.tolist() if isinstance(value, np.ndarray) else list(value), spec)
