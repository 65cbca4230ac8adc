"""The online feature hook: requests that carry entity ids get their feature values from the feature store."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Protocol, runtime_checkable

import numpy as np

from roost.errors import RoostError
from roost.serve.codec import HTTPError, bad
from roost.serve.signature import MISSING, Package, TensorSpec

log = logging.getLogger(__name__)

TIME_PREFIXES = ("_fs_event_time.", "_fs_created_time.")  # fetched keys that are row times, not features


@runtime_checkable
class FeatureFetcher(Protocol):
    """Reads feature values for entity ids from an online store."""

    def fetch(
        self, refs: list[str], entities: dict[str, np.ndarray], request_data: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Return one array per ref *field* ("view:field" -> "field"), rows aligned with the entity arrays; fields
        of request-time views are computed from `request_data` (the request's values of their request fields).

        A fetcher may add `_fs_event_time.VIEW` / `_fs_created_time.VIEW` (datetime64, NaT where the store had no
        row): they go to the request log, not to the model."""
        ...


class StoreFetcher:
    """FeatureFetcher over roost's online store (roost.features.OnlineFetcher, prepared once per ref set)."""

    def __init__(self, online_store: str | None = None, with_times: bool = False) -> None:
        self.online_store = online_store
        self.with_times = with_times  # also read each row's event/created time (for the request log)
        self._prepared: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def fetch(
        self, refs: list[str], entities: dict[str, np.ndarray], request_data: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Latest materialised (or pushed) values of `refs` for the entity ids, and request-time features computed
        from `request_data`, keyed by field name."""
        from roost.features.serving import OnlineFetcher

        key = (tuple(refs), tuple(sorted(entities)))
        with self._lock:
            fetcher = self._prepared.get(key)
            if fetcher is None:
                fetcher = self._prepared[key] = OnlineFetcher(
                    refs, list(entities), online_store=self.online_store, with_times=self.with_times
                )
        out: dict[str, np.ndarray] = fetcher.fetch(entities, request_data)
        return out


def default_fetcher(with_times: bool = False) -> FeatureFetcher | None:
    """The workspace's online store as a fetcher, or None when the feature store is not available."""
    try:
        import roost.features.serving  # noqa: F401
    except ImportError:
        return None
    return StoreFetcher(with_times=with_times)


def _coerce(value: object, spec: TensorSpec) -> np.ndarray:
    """A fetched feature column as the model input dtype; missing values follow the training convention."""
    arr = np.asarray(value)
    if spec.dtype == "string":
        out = np.empty(arr.shape, dtype=object)
        out[:] = ["" if v is None else str(v) for v in arr.reshape(-1).tolist()]
        return out
    if spec.dtype == "bool":
        return np.array([bool(v) if v is not None else False for v in arr.reshape(-1).tolist()], dtype=bool)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr.reshape(-1).tolist()], dtype=np.float64)
    if spec.np_dtype.kind == "i" and arr.dtype.kind == "f":
        arr = np.where(np.isnan(arr), MISSING[spec.dtype], arr)
    return arr.astype(spec.np_dtype)


def needs_features(pkg: Package, arrays: dict[str, np.ndarray]) -> bool:
    """True when the model reads the feature store and the request sent entity ids instead of all features."""
    if not pkg.feature_refs or not pkg.entities:
        return False
    return any(e in arrays for e in pkg.entities) and any(s.name not in arrays for s in pkg.inputs)


_REQUEST_DTYPES = {"timestamp": "string"}  # feature dtype -> request tensor dtype where they differ (ISO-8601 text)


def request_spec(name: str, dtype: str) -> TensorSpec:
    """A spec for a request-field input (not in the signature), typed as the request view declares it."""
    return TensorSpec(name, _REQUEST_DTYPES.get(dtype, dtype), (-1,))


def entity_spec(name: str, values: object) -> TensorSpec:
    """A spec for an entity-id input (not in the signature): strings stay strings, numbers become int64."""
    first = values[0] if isinstance(values, list) and values else values
    return TensorSpec(name, "string" if isinstance(first, str) else "int64", (-1,))


async def fill(pkg: Package, arrays: dict[str, np.ndarray], fetcher: FeatureFetcher | None) -> dict[str, np.ndarray]:
    """Replace entity-id inputs by the model's features read from the online store (in place).

    Request fields of request-time features (pkg.request_fields) are passed to the fetcher too. Returns the lineage
    for the request log: the entity ids and request fields as sent, and the `_fs_*` times the fetcher read."""
    if fetcher is None:
        raise bad(
            f"the request sends entity ids ({', '.join(e for e in pkg.entities if e in arrays)}) but this "
            "server has no online feature store; send the feature values themselves"
        )
    missing = [e for e in pkg.entities if e not in arrays]
    if missing:
        raise bad(f"entity id input {missing[0]!r} is missing; the model's entities are {pkg.entities}")
    for e in pkg.entities:
        if arrays[e].ndim != 1 or len(arrays[e]) == 0:
            raise bad(f"entity id input {e!r} must be a non-empty 1-D list, got shape {list(arrays[e].shape)}")
    model_inputs = {s.name for s in pkg.inputs}
    entities = {e: arrays[e] if e in model_inputs else arrays.pop(e) for e in pkg.entities}
    fields = pkg.request_fields
    missing = [f for f in fields if f not in arrays]
    if missing:
        raise bad(
            f"request field {missing[0]!r} is missing; the model's request-time features need "
            + ", ".join(f"{k} ({v})" for k, v in fields.items())
        )
    request = {f: arrays[f] if f in model_inputs else arrays.pop(f) for f in fields}
    for f, arr in request.items():
        if arr.ndim != 1:
            raise bad(f"request field {f!r} must be a 1-D list, got shape {list(arr.shape)}")
    loop = asyncio.get_running_loop()
    try:
        if request:
            fetched = await loop.run_in_executor(None, fetcher.fetch, pkg.feature_refs, entities, request)
        else:  # a fetcher written before request-time features takes (refs, entities)
            fetched = await loop.run_in_executor(None, fetcher.fetch, pkg.feature_refs, entities)
    except HTTPError:
        raise
    except RoostError as exc:  # e.g. ids of the wrong type for the entity key
        raise bad(f"online features: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - store errors are reported, the worker lives on
        raise HTTPError(503, f"online feature store read failed: {exc}") from None
    for spec in pkg.inputs:
        if spec.name in arrays:
            continue
        if spec.name not in fetched:
            raise HTTPError(503, f"the online feature store returned no {spec.name!r}")
        try:
            arrays[spec.name] = _coerce(fetched[spec.name], spec)
        except (TypeError, ValueError) as exc:
            raise HTTPError(503, f"feature {spec.name!r} from the online store is not {spec.dtype}: {exc}") from None
    lineage = dict(entities)
    lineage.update(request)
    lineage.update((k, v) for k, v in fetched.items() if k.startswith(TIME_PREFIXES))
    return lineage
