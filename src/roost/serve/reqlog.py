"""Sampled request/response logging to rotated Parquet files, buffered and written by a background thread.

One file set per model: ``<dir>/<model>/<YYYY-MM-DD>/<HHMMSS>-<pid>-<seq>.parquet``, one row per predicted row.
Columns: ``_ts`` (UTC), ``_request_id``, ``_model``, ``_version``, ``_protocol``, ``_latency_ms``, ``_row`` (row
index inside its request), then every model input under its own name, then every output as ``pred_<name>``.
A file is written as ``.<name>.part`` and renamed when rotated, so readers only ever see complete files.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# (time, request id, loaded model, protocol, inputs, outputs, latency seconds)
Record = tuple[float, str, Any, str, dict[str, np.ndarray], dict[str, np.ndarray], float]


def _column(arr: np.ndarray) -> Any:
    """A numpy array (1-D, or 2-D as fixed-size lists) as a pyarrow array."""
    import pyarrow as pa

    if arr.ndim <= 1:
        return pa.array(arr.reshape(-1) if arr.ndim == 0 else arr)
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, int(np.prod(arr.shape[1:])))


class _File:
    """One Parquet file being written: rotated by age or row count."""

    def __init__(self, directory: Path, schema: Any, seq: int) -> None:
        import pyarrow.parquet as pq

        now = time.gmtime()
        folder = directory / time.strftime("%Y-%m-%d", now)
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


class RequestLogger:
    """Keeps a sample (`rate` in 0..1) of request/response pairs and writes them to Parquet in the background."""

    def __init__(
        self,
        directory: str | Path,
        rate: float = 1.0,
        flush_s: float = 1.0,
        rotate_s: float = 60.0,
        rotate_rows: int = 200_000,
        metrics: Any = None,
    ) -> None:
        self.directory = Path(directory)
        self.rate = min(max(float(rate), 0.0), 1.0)
        self.flush_s, self.rotate_s, self.rotate_rows = flush_s, rotate_s, rotate_rows
        self.metrics = metrics
        self._buf: list[Record] = []
        self._lock = threading.Lock()
        self._files: dict[tuple[str, str], _File] = {}
        self._seq = itertools.count()
        self._ids = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="roost-reqlog", daemon=True)
        self._thread.start()

    def maybe_log(
        self, model: Any, protocol: str, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray], latency_s: float
    ) -> None:
        """Keep this pair with probability `rate` (cheap: no copy, no I/O on the request path)."""
        if self.rate <= 0 or (self.rate < 1 and random.random() >= self.rate):
            return
        rid = f"{os.getpid()}-{next(self._ids)}"
        with self._lock:
            self._buf.append((time.time(), rid, model, protocol, inputs, outputs, latency_s))

    def _table(self, records: list[Record]) -> Any:
        """Build one Arrow table from records of the same model version."""
        import pyarrow as pa

        model = records[0][2]
        sizes = np.array([len(next(iter(r[5].values()))) for r in records])
        total = int(sizes.sum())
        cols: dict[str, Any] = {
            "_ts": pa.array(
                (np.repeat([r[0] for r in records], sizes) * 1e6).astype("int64"), type=pa.timestamp("us", tz="UTC")
            ),
            "_request_id": pa.array(np.repeat(np.array([r[1] for r in records], dtype=object), sizes)),
            "_model": pa.array([model.name] * total, type=pa.string()),
            "_version": pa.array([model.version] * total, type=pa.string()),
            "_protocol": pa.array(np.repeat(np.array([r[3] for r in records], dtype=object), sizes)),
            "_latency_ms": pa.array(np.repeat([r[6] * 1000.0 for r in records], sizes).astype("float32")),
            "_row": pa.array(np.concatenate([np.arange(n, dtype="int32") for n in sizes])),
        }
        for spec in model.package.inputs:
            cols[spec.name] = _column(np.concatenate([r[4][spec.name] for r in records]))
        for spec in model.package.outputs:
            cols[f"pred_{spec.name}"] = _column(np.concatenate([r[5][spec.name] for r in records]))
        return pa.table(cols)

    def flush(self) -> None:
        """Write what is buffered now (called by the background thread, and at close)."""
        with self._lock:
            records, self._buf = self._buf, []
        groups: dict[tuple[str, str], list[Record]] = {}
        for r in records:
            groups.setdefault((r[2].name, r[2].version), []).append(r)
        for key, recs in groups.items():
            try:
                self._write(key, self._table(recs))
            except Exception:
                log.exception("request log write failed for %s", key[0])
        self._rotate(force=False)

    def _write(self, key: tuple[str, str], table: Any) -> None:
        """Append a table to the model's current file, opening or rotating as needed."""
        f = self._files.get(key)
        if f is not None and not f.schema.equals(table.schema):
            self._files.pop(key).close()
            f = None
        if f is None:
            for other in [k for k in self._files if k[0] == key[0]]:
                self._files.pop(other).close()
            f = self._files[key] = _File(self.directory / key[0], table.schema, next(self._seq))
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
                except Exception:
                    log.exception("cannot finish request log file %s", f.part)

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
