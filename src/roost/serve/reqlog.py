"""Sampled request/response logging to rotated Parquet files, buffered and written by a background thread.

One file set per model: ``<dir>/<model>/<YYYY-MM-DD>/<HHMMSS>-<pid>-<seq>.parquet``, one row per predicted row.
Columns: ``_ts`` (UTC), ``_request_id``, ``_model``, ``_version``, ``_protocol``, ``_latency_ms``, ``_row`` (row
index inside its request), then every model input under its own name, then every output as ``pred_<name>``.
Models that read the online store (feature_refs + entities) also get every entity key under its own name (as sent;
null for requests that sent feature values) and, per feature view V, ``_fs_event_time.V`` / ``_fs_created_time.V``
(the stored row's times; null when the store had no row). Each file carries the key-value metadata
``roost.feature_refs`` (JSON {model input: "view:field"}) and ``roost.entities`` (JSON list of key names). Models
with request-time features also log every request field under its own name (as sent) and carry
``roost.request_fields`` (JSON {field: dtype}), so skew checks can recompute those features offline. Every file
carries ``roost.log_rate``, the sampling rate its requests were kept at (the traffic rollup weights them by 1 / rate).
A file is written as ``.<name>.part`` and renamed when rotated, so readers only ever see complete files.
Logging never fails or blocks a request: a failed write is logged as a warning and its rows are counted as dropped,
and past `max_buffer_rows` waiting rows new samples are dropped (counted) instead of queued.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

log = logging.getLogger(__name__)

EVENT_TIME = "_fs_event_time."  # + view name (the same names as roost.features.serving.EVENT_TIME)
CREATED_TIME = "_fs_created_time."
WARN_EVERY_S = 60.0
ROTATE_ENV = "ROOST_REQUEST_LOG_ROTATE_S"  # seconds a file stays open (default 60): traffic shows once it rotates


def rotate_seconds(given: float | None) -> float:
    """How long a request-log file stays open: `given`, else ROOST_REQUEST_LOG_ROTATE_S, else 60 s."""
    if given is not None:
        return given
    try:
        value = float(os.environ.get(ROTATE_ENV, "60"))
    except ValueError:
        return 60.0
    return value if value > 0 else 60.0


class Record(NamedTuple):
    """One sampled request: what was asked, what the model saw and answered, and where its features came from."""

    ts: float
    request_id: str
    model: Any
    protocol: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    latency_s: float
    lineage: dict[str, np.ndarray] | None  # entity ids as sent and _fs_* times (entity-id requests only)


def _column(arr: np.ndarray) -> Any:
    """A numpy array (1-D, or 2-D as fixed-size lists) as a pyarrow array."""
    import pyarrow as pa

    if arr.ndim <= 1:
        return pa.array(arr.reshape(-1) if arr.ndim == 0 else arr)
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(np.prod(arr.shape[1:])))


def feature_sources(pkg: Any) -> tuple[dict[str, str], list[str], list[str]]:
    """({model input: "view:field"} filled from the online store, entity keys, views read) of a package."""
    refs = list(getattr(pkg, "feature_refs", None) or [])
    entities = list(getattr(pkg, "entities", None) or [])
    if not refs or not entities:
        return {}, [], []
    names = {s.name for s in pkg.inputs}
    by_input = {r.split(":", 1)[1]: r for r in refs if ":" in r and r.split(":", 1)[1] in names}
    views = list(dict.fromkeys(r.split(":", 1)[0] for r in refs))
    return by_input, entities, views


def _day(ts: float) -> str:
    """The UTC day of a Unix time, as the log's partition folder name."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _entity_column(records: list[Record], sizes: np.ndarray, key: str) -> Any:
    """An entity key as sent (int64, or string when any request sent strings); null where a request sent none."""
    import pyarrow as pa

    parts = [None if r.lineage is None else r.lineage.get(key) for r in records]
    text = any(p is not None and p.dtype.kind in "OUS" for p in parts)
    values: list[Any] = []
    for p, n in zip(parts, sizes):
        if p is None or len(p) != n:
            values.extend([None] * int(n))
        elif text:
            values.extend(str(v) for v in p.tolist())
        else:
            values.extend(p.tolist())
    return pa.array(values, pa.string() if text else pa.int64())


def _request_column(records: list[Record], sizes: np.ndarray, key: str) -> Any:
    """A request field as sent (one Arrow type; text when requests disagreed); null where a request sent none."""
    import pyarrow as pa

    parts = []
    for r, n in zip(records, sizes):
        p = None if r.lineage is None else r.lineage.get(key)
        parts.append(pa.array(p) if p is not None and len(p) == n else int(n))
    types = {p.type for p in parts if not isinstance(p, int)}
    typ = types.pop() if len(types) == 1 else pa.string()
    return pa.concat_arrays([pa.nulls(p, typ) if isinstance(p, int) else p.cast(typ) for p in parts])


def _time_column(records: list[Record], sizes: np.ndarray, name: str) -> Any:
    """A `_fs_*` time column (timestamp[us, UTC]); null where the store had no row or the request sent features."""
    import pyarrow as pa

    parts = []
    for r, n in zip(records, sizes):
        p = None if r.lineage is None else r.lineage.get(name)
        if p is not None and len(p) == n:
            parts.append(p.astype("datetime64[us]").astype(np.int64))
        else:
            parts.append(np.full(int(n), np.iinfo(np.int64).min))
    us = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return pa.array(us, pa.int64(), mask=us == np.iinfo(np.int64).min).cast(pa.timestamp("us", tz="UTC"))


RATE_KEY = "roost.log_rate"


class _File:
    """One Parquet file being written: rotated by age or row count."""

    def __init__(self, directory: Path, schema: Any, seq: int, day: str) -> None:
        import pyarrow.parquet as pq

        now = time.gmtime()
        self.day = day
        folder = directory / day
        folder.mkdir(parents=True, exist_ok=True)
        self.final = folder / f"{time.strftime('%H%M%S', now)}-{os.getpid()}-{seq:05d}.parquet"
        self.part = folder / f".{self.final.name}.part"
        self.writer = pq.ParquetWriter(str(self.part), schema, compression="zstd")
        self.schema = schema
        self.opened = time.monotonic()
        self.rows = 0

    def close(self) -> Path:
        """Finish the file and make it visible under its final name."""
        self.writer.close()
        self.part.rename(self.final)
        return self.final


# file sequence numbers, one counter per process: two loggers of one process writing a model within one second
# (the name's resolution) must not pick the same name
_SEQ = itertools.count()


class RequestLogger:
    """Keeps a sample (`rate` in 0..1) of request/response pairs and writes them to Parquet in the background."""

    def __init__(
        self,
        directory: str | Path,
        rate: float = 1.0,
        flush_s: float = 1.0,
        rotate_s: float | None = None,
        rotate_rows: int = 200_000,
        metrics: Any = None,
        max_buffer_rows: int = 1_000_000,
    ) -> None:
        self.directory = Path(directory)
        self.rate = min(max(float(rate), 0.0), 1.0)
        self.flush_s, self.rotate_s, self.rotate_rows = flush_s, rotate_seconds(rotate_s), rotate_rows
        self.metrics = metrics
        self.max_buffer_rows = max_buffer_rows
        self.dropped = 0  # rows sampled but never written (buffer full or write failed)
        self._buf: list[Record] = []
        self._buf_rows = 0
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str], _File] = {}
        self._warned: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="roost-reqlog", daemon=True)
        self._thread.start()

    def maybe_log(
        self,
        model: Any,
        protocol: str,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        latency_s: float,
        request_id: str | None = None,
        lineage: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Keep this pair with probability `rate` (cheap: no copy, no I/O on the request path).

        `lineage` holds the entity ids as sent and the `_fs_*` times of the online rows, for entity-id requests.
        """
        if self.rate <= 0 or (self.rate < 1 and random.random() >= self.rate):
            return
        rows = len(next(iter(outputs.values()))) if outputs else 0
        rec = Record(time.time(), request_id or uuid.uuid4().hex, model, protocol, inputs, outputs, latency_s, lineage)
        with self._lock:
            full = self._buf_rows + rows > self.max_buffer_rows
            if not full:
                self._buf.append(rec)
                self._buf_rows += rows
        if full:
            self._drop(model.name, rows, "the write queue is full")

    def _drop(self, model: str, rows: int, why: str) -> None:
        """Count rows that will never be written, and warn (at most once a minute per model)."""
        self.dropped += rows
        if self.metrics is not None:
            self.metrics.log_dropped_rows.labels(model).inc(rows)
        now = time.monotonic()
        if now - self._warned.get(model, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[model] = now
            log.warning("request log for %s dropped %d rows: %s", model, rows, why)

    def _table(self, records: list[Record]) -> Any:
        """Build one Arrow table from records of the same model version."""
        import pyarrow as pa

        model = records[0].model
        sizes = np.array([len(next(iter(r.outputs.values()))) for r in records])
        total = int(sizes.sum())
        cols: dict[str, Any] = {
            "_ts": pa.array(
                (np.repeat([r.ts for r in records], sizes) * 1e6).astype("int64"), type=pa.timestamp("us", tz="UTC")
            ),
            "_request_id": pa.array(np.repeat(np.array([r.request_id for r in records], dtype=object), sizes)),
            "_model": pa.array([model.name] * total, type=pa.string()),
            "_version": pa.array([model.version] * total, type=pa.string()),
            "_protocol": pa.array(np.repeat(np.array([r.protocol for r in records], dtype=object), sizes)),
            "_latency_ms": pa.array(np.repeat([r.latency_s * 1000.0 for r in records], sizes).astype("float32")),
            "_row": pa.array(np.concatenate([np.arange(n, dtype="int32") for n in sizes])),
        }
        for spec in model.package.inputs:
            cols[spec.name] = _column(np.concatenate([r.inputs[spec.name] for r in records]))
        by_input, entities, views = feature_sources(model.package)
        for key in entities:
            if key not in cols:
                cols[key] = _entity_column(records, sizes, key)
        fields = dict(getattr(model.package, "request_fields", None) or {}) if entities else {}
        for key in fields:
            if key not in cols:
                cols[key] = _request_column(records, sizes, key)
        for view in views:
            for prefix in (EVENT_TIME, CREATED_TIME):
                cols[prefix + view] = _time_column(records, sizes, prefix + view)
        for spec in model.package.outputs:
            cols[f"pred_{spec.name}"] = _column(np.concatenate([r.outputs[spec.name] for r in records]))
        table = pa.table(cols)
        meta = {RATE_KEY: repr(self.rate)}  # the sampling rate: the traffic rollup weights each row by 1 / rate
        if entities:
            meta.update({"roost.feature_refs": json.dumps(by_input), "roost.entities": json.dumps(entities)})
            if fields:
                meta["roost.request_fields"] = json.dumps(fields)
        return table.replace_schema_metadata(meta)

    def flush(self) -> None:
        """Write what is buffered now (called by the background thread, and at close)."""
        with self._lock:
            records, self._buf, self._buf_rows = self._buf, [], 0
        groups: dict[tuple[str, str, str], list[Record]] = {}
        for r in records:  # a file holds one model version and one UTC day (the day of the requests)
            groups.setdefault((r.model.name, r.model.version, _day(r.ts)), []).append(r)
        for (name, version, day), recs in groups.items():
            key = (name, version)
            try:
                self._write(key, self._table(recs), day)
            except Exception as exc:  # noqa: BLE001 - a full disk or a read-only folder must not stop serving
                broken = self._files.pop(key, None)
                if broken is not None:
                    self._discard(broken)
                rows = sum(len(next(iter(r.outputs.values()))) for r in recs)
                self._drop(key[0], rows, f"cannot write under {self.directory}: {type(exc).__name__}: {exc}")
        self._rotate(force=False)

    @staticmethod
    def _discard(f: _File) -> None:
        """Forget a file whose writes failed (its partial .part file is left for inspection)."""
        try:
            f.writer.close()
        except Exception:
            log.debug("closing a failed request log file %s", f.part, exc_info=True)

    def _write(self, key: tuple[str, str], table: Any, day: str) -> None:
        """Append a table to the model's current file, opening or rotating as needed."""
        f = self._files.get(key)
        if f is not None and (f.day != day or not f.schema.equals(table.schema)):
            self._files.pop(key).close()
            f = None
        if f is None:
            for other in [k for k in self._files if k[0] == key[0]]:
                self._files.pop(other).close()
            f = self._files[key] = _File(self.directory / key[0], table.schema, next(_SEQ), day)
        f.writer.write_table(table)
        f.rows += table.num_rows
        if self.metrics is not None:
            self.metrics.logged_rows.labels(key[0]).inc(table.num_rows)

    def _rotate(self, force: bool) -> None:
        """Close files that are old or big enough (all of them when `force`)."""
        now = time.monotonic()
        for key, f in list(self._files.items()):
            if force or f.rows >= self.rotate_rows or now - f.opened >= self.rotate_s:
                self._files.pop(key)
                try:
                    f.close()
                except Exception as exc:  # noqa: BLE001 - reported and counted, serving goes on
                    self._drop(key[0], f.rows, f"cannot finish {f.part.name}: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        """Flush every flush_s seconds until closed."""
        while not self._stop.wait(self.flush_s):
            self.flush()

    def close(self) -> None:
        """Flush everything and finish all open files."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        self._rotate(force=True)
