"""Online reads: `online()` for people and notebooks, `OnlineFetcher` for the serving hot path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.features.checks import float_text_key
from roost.features.refs import resolve

_NP = {"int64": np.int64, "int32": np.int32, "float64": np.float64, "float32": np.float32, "bool": np.bool_}


EVENT_TIME = "_fs_event_time."  # + view name: the stored row's event time, as returned with `with_times`
CREATED_TIME = "_fs_created_time."
EXPIRED = "_fs_expired."  # + view name: with `with_times` and a ttl, per row whether the stored value was too old

__all__ = [
    "to_numpy",
    "to_arrow",
    "key_list",
    "OnlineFetcher",
    "online",
    "now_us",
    "as_of_us",
    "EVENT_TIME",
    "CREATED_TIME",
    "EXPIRED",
]


AS_OF_ENV = "ROOST_ONLINE_AS_OF"  # an ISO 8601 time: online reads apply ttls as of it (replaying history, demos)
_as_of: tuple[str, int] | None = None


def now_us() -> int:
    """The read's moment in UTC microseconds, against which a view's ttl is applied: now, or ROOST_ONLINE_AS_OF."""
    import os
    import time

    global _as_of
    text = os.environ.get(AS_OF_ENV)
    if not text:
        return time.time_ns() // 1000
    if _as_of is None or _as_of[0] != text:
        from datetime import UTC, datetime, timedelta

        try:
            t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RoostError(
                f"{AS_OF_ENV}={text!r} is not an ISO 8601 time", hint="e.g. 2024-05-01T12:00:00Z"
            ) from None
        if t.tzinfo is None:
            raise RoostError(f"{AS_OF_ENV}={text!r} has no offset", hint="e.g. 2024-05-01T12:00:00Z")
        _as_of = (text, (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))
    return _as_of[1]


def as_of_us(when: Any) -> int:
    """A tz-aware datetime (or ISO 8601 text with an offset) as UTC microseconds; `as_of` is named in errors."""
    from datetime import UTC, datetime, timedelta

    t = when
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RoostError(f"as_of {when!r} is not an ISO 8601 time", hint="e.g. 2024-05-01T12:00:00Z") from None
    if not isinstance(t, datetime):
        raise RoostError(f"as_of must be a datetime, got {type(when).__name__}", hint="e.g. datetime(..., tzinfo=UTC)")
    if t.tzinfo is None or t.utcoffset() is None:
        raise RoostError(
            f"as_of {when!r} is timezone-naive", hint="give an offset, e.g. datetime(2024, 5, 1, tzinfo=timezone.utc)"
        )
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def to_numpy(values: list[Any], dtype: str) -> np.ndarray:
    """Stored values as numpy, like Arrow's to_numpy: ints with nulls become float64 NaN, bools with nulls object."""
    if dtype in ("float64", "float32"):
        return np.array(values, dtype=_NP[dtype])
    has_null = None in values
    if dtype in ("int64", "int32"):
        return np.array(values, dtype=np.float64 if has_null else _NP[dtype])
    if dtype == "bool":
        return np.array(
            [None if v is None else bool(v) for v in values] if has_null else values,
            dtype=object if has_null else np.bool_,
        )
    if dtype == "timestamp":
        return np.array([-(2**63) if v is None else v for v in values], dtype=np.int64).astype("datetime64[us]")
    return np.array(values, dtype=object)


def to_arrow(values: list[Any], dtype: str) -> Any:
    """Stored values as an Arrow array of the field's type."""
    import pyarrow as pa

    from roost.features.definitions import arrow_type

    if dtype == "bool":
        values = [None if v is None else bool(v) for v in values]
    if dtype == "timestamp":
        return pa.array(values, pa.int64()).cast(arrow_type(dtype))
    return pa.array(values, arrow_type(dtype))


def key_list(values: Any, dtype: str, key: str) -> list[Any]:
    """Entity ids as a Python list of the key's type (ints for int keys, str for string keys).

    An integer key refuses non-integral numbers (3.2 would otherwise read entity 3) and strings that are not
    whole numbers.
    """
    if isinstance(values, (str, bytes, int, float, np.integer, np.floating)):
        values = [values]
    try:
        if dtype in ("int64", "int32"):
            arr = np.asarray(values)
            if arr.dtype.kind in "iub":
                return list(arr.astype(np.int64).tolist())
            if arr.dtype.kind == "f":
                bad = ~np.isfinite(arr) | (arr != np.trunc(arr))
                if bad.any():
                    raise _not_integral(key, dtype, arr[bad][0])
                return [int(v) for v in arr.tolist()]
            out = []
            for v in arr.tolist() if arr.ndim else [arr.item()]:
                iv = int(v)  # int('3.2') raises; int(3.2) and int(Decimal('3.2')) truncate: compared below
                if not isinstance(v, (str, bytes)) and iv != v:
                    raise _not_integral(key, dtype, v)
                out.append(iv)
            return out
        if getattr(values, "dtype", None) is not None and values.dtype.kind == "f":
            raise float_text_key("entity ids", key, str(values.dtype))
        return [
            v if isinstance(v, str) else _text(v, key)
            for v in (values.tolist() if hasattr(values, "tolist") else values)
        ]
    except (TypeError, ValueError, OverflowError) as exc:
        raise RoostError(f"entity key {key!r} needs {dtype} values: {exc}") from None


def _text(v: Any, key: str) -> str:
    """A non-text id of a 'string' key as text; a float is refused (1.0 would be '1.0', never the id '1')."""
    if isinstance(v, (float, np.floating)):
        raise float_text_key("entity ids", key, type(v).__name__)
    return str(v)


def _not_integral(key: str, dtype: str, value: Any) -> RoostError:
    plain = value.item() if isinstance(value, np.generic) else value  # 3.2, not np.float64(3.2)
    return RoostError(
        f"entity key {key!r} ({dtype}) got the non-integral value {plain!r}",
        hint="a fractional id would silently read another entity: pass whole numbers",
    )


class OnlineFetcher:
    """Fetch the online values of fixed feature refs for batches of entity ids (prepared once, reused per call)."""

    def __init__(
        self,
        feature_refs: Sequence[str],
        entity_keys: Sequence[str],
        *,
        full_names: bool = False,
        online_store: str | None = None,
        with_times: bool = False,
        as_of: Any = None,
    ) -> None:
        from roost.features.online_stores import open_online_store

        self.as_of = None if as_of is None else as_of_us(as_of)  # None: now (or ROOST_ONLINE_AS_OF) at each read

        self.selection = resolve(list(feature_refs), full_names=full_names)
        self.entity_keys = list(entity_keys)
        missing = [k for k in self.selection.join_keys if k not in self.entity_keys]
        if missing:
            raise RoostError(
                f"features {list(feature_refs)} need entity key(s) {missing}, not given",
                hint=f"pass entity_keys including {list(self.selection.join_keys)}",
            )
        self.store = open_online_store(online_store)
        self.with_times = with_times
        self._plan: list[_Read] = []
        for vs in self.selection.views:
            fields = {f: vs.spec["fields"][f] for f in vs.fields}
            ttl = vs.spec.get("ttl_seconds")
            ttl_us = None if ttl is None else int(round(float(ttl) * 1_000_000))
            reader = self.store.reader(
                vs.name, vs.keys, fields, with_time=with_times or ttl_us is not None, with_created=with_times
            )
            outs = list(zip(vs.outputs, fields.values()))
            if with_times:
                outs += [(f"{EVENT_TIME}{vs.name}", "timestamp"), (f"{CREATED_TIME}{vs.name}", "timestamp")]
            self._plan.append(_Read(vs.name, reader, list(vs.keys.items()), outs, len(fields), ttl_us))
        self._stored = {o: vs.spec["fields"][f] for vs in self.selection.views for f, o in zip(vs.fields, vs.outputs)}
        self._hidden = set(self.selection.hidden)
        self._requests: list[tuple[Any, Any]] = []
        if self.selection.requests:
            from roost import workspace
            from roost.features.loader import load_function

            root = workspace.current().root
            self._requests = [(rs, load_function(rs.spec["transform"], root)) for rs in self.selection.requests]

    @property
    def dtypes(self) -> dict[str, str]:
        """Output name -> dtype name of every fetched feature."""
        return dict(self.selection.dtypes)

    @property
    def request_fields(self) -> dict[str, str]:
        """Request field -> dtype the request-time features need (passed as `request_data`)."""
        return self.selection.request_fields

    @property
    def feature_refs(self) -> list[str]:
        """The resolved 'view:field' refs in output order."""
        return list(self.selection.refs)

    def _requested(self, raw: dict[str, list[Any]], request_data: Mapping[str, Any] | None, n: int | None) -> None:
        """Compute the request views into `raw` (stored-value form), from `request_data` and the stored inputs."""
        from roost.features.request_compute import compute, request_array, stored_list

        need = self.request_fields
        data = request_data or {}
        missing = [f for f in need if f not in data]
        if missing:
            views = ", ".join(rs.name for rs, _ in self._requests if set(rs.request) & set(missing))
            raise RoostError(
                f"request data lacks field(s) {missing} needed by request view(s) {views}",
                hint=f"pass request_data with {', '.join(f'{k} ({t})' for k, t in need.items())}",
            )
        arrays = {f: request_array(data[f], t, f) for f, t in need.items()}
        for f, arr in arrays.items():
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise RoostError(
                    f"request field {f!r} has {len(arr)} values for {n} rows",
                    hint="pass one value per row (entity ids and request fields alike)",
                )
        n = n or 0
        for rs, fn in self._requests:
            inputs = {f: arrays[f] for f in rs.request}
            for name, col in rs.sources.items():
                inputs[name] = to_arrow(raw[col], self._stored[col])
            got = compute(rs.spec, fn, inputs, n)
            for f, out in zip(rs.fields, rs.outputs):
                raw[out] = stored_list(got[f], rs.spec["fields"][f])

    def _keys(self, entity_ids: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        n = None
        for k, dtype in self.selection.join_keys.items():
            if k not in entity_ids:
                raise RoostError(f"entity ids lack key {k!r}", hint=f"pass {list(self.selection.join_keys)}")
            out[k] = key_list(entity_ids[k], dtype, k)
            if n is not None and len(out[k]) != n:
                raise RoostError("entity key arrays differ in length", hint="pass one value per row for every key")
            n = len(out[k])
        return out

    def fetch_lists(
        self, entity_ids: dict[str, Any], request_data: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        """Raw stored values per output name (Python lists aligned with the ids; None where missing); request-time
        features are computed from `request_data` (one value per row for each request field)."""
        keys = self._keys(entity_ids)
        out: dict[str, list[Any]] = {}
        for rd in self._plan:
            cols, expired = rd.read(keys, self.as_of)
            for (name, _), col in zip(rd.outs, cols):
                out[name] = col
            if self.with_times and expired is not None:
                out[f"{EXPIRED}{rd.view}"] = expired
        if self._requests:
            self._requested(out, request_data, len(next(iter(keys.values()))) if keys else None)
            for h in self._hidden:
                del out[h]
        return out

    def fetch(self, entity_ids: dict[str, Any], request_data: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Feature arrays per output name, aligned with the ids (NaN/None where an entity has no value); request-time
        features are computed from `request_data`.

        With `with_times`, also `_fs_event_time.VIEW` and `_fs_created_time.VIEW` per view (datetime64[us] UTC,
        NaT where the entity has no row or the source has no created time)."""
        if self._requests:
            raw = self.fetch_lists(entity_ids, request_data)
            kinds = {**self.dtypes, **{n: d for rd in self._plan for n, d in rd.outs}}
            return {name: to_numpy(col, kinds[name]) for name, col in raw.items()}
        keys = self._keys(entity_ids)
        out: dict[str, np.ndarray] = {}
        for rd in self._plan:
            cols, _ = rd.read(keys, self.as_of)
            for (name, dtype), col in zip(rd.outs, cols):
                out[name] = to_numpy(col, dtype)
        return out


class _Read:
    """One view's prepared read; with a ttl, a value older than ttl at the read's moment is no value (as offline:
    a row at event time e is valid at t when e >= t - ttl)."""

    def __init__(
        self, view: str, reader: Any, keys: list[tuple[str, str]], outs: list[tuple[str, str]], nf: int, ttl: int | None
    ) -> None:
        self.view, self.reader, self.keys, self.outs, self.nf, self.ttl = view, reader, keys, outs, nf, ttl
        self.timed = len(outs) > nf  # the event time is an output (with_times), not only read for the ttl

    def read(self, keys: dict[str, list[Any]], as_of: int | None = None) -> tuple[list[list[Any]], list[bool] | None]:
        """The stored columns for the ids: fields (then times, with_times), expired values as None (ttl applied as
        of `as_of` microseconds, default now); and, with a ttl, per row whether its stored value was expired."""
        cols = list(self.reader.read([keys[k] for k, _ in self.keys]))
        if self.ttl is None:
            return cols, None
        cutoff = (now_us() if as_of is None else as_of) - self.ttl
        gone = [t is not None and t < cutoff for t in cols[self.nf]]
        if any(gone):
            for j in range(self.nf):
                cols[j] = [None if g else v for v, g in zip(cols[j], gone)]
        return (cols if self.timed else cols[: self.nf]), gone


def online(
    features: Sequence[str] | str,
    entities: dict[str, Any],
    *,
    full_names: bool = False,
    output: str = "pandas",
    online_store: str | None = None,
    request_data: Mapping[str, Any] | None = None,
    as_of: Any = None,
) -> Any:
    """Read the latest materialised (or pushed) feature values for the given entity ids, and compute request-time
    features from `request_data` ({request field: one value per row}): join keys plus one column per feature.

    Views' ttls apply as of `as_of` (a tz-aware datetime; default now, or ROOST_ONLINE_AS_OF when set): a stored
    value older than ttl at that moment reads as missing. It moves the ttl's clock only: the values are the latest
    stored ones, not a replay of history (that is `training_set`)."""
    import pyarrow as pa

    from roost.features.definitions import arrow_type

    if output not in ("pandas", "arrow"):
        raise RoostError(f"output must be 'pandas' or 'arrow', got {output!r}")
    refs = [features] if isinstance(features, str) else list(features)
    fetcher = OnlineFetcher(refs, list(entities), full_names=full_names, online_store=online_store, as_of=as_of)
    keys = fetcher._keys(entities)
    raw = fetcher.fetch_lists(keys, request_data)
    cols = {k: pa.array(v, arrow_type(fetcher.selection.join_keys[k])) for k, v in keys.items()}
    for name, dtype in fetcher.dtypes.items():
        cols[name] = to_arrow(raw[name], dtype)
    tbl = pa.table(cols)
    return tbl if output == "arrow" else tbl.to_pandas()
