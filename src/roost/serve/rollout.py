"""Rollouts: a canary that takes a seeded share of a model's requests (drawn per request id), and a shadow that
is sent a copy of a share of them off the response path, its answers compared with the primary's and recorded."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.serve.loader import LoadedModel, ModelSpec, parse_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CanarySpec:
    """`NAME@ALIAS=PCT`: serve that model as a canary of the model served under the same name."""

    spec: ModelSpec
    percent: float


def parse_canary(item: str) -> CanarySpec:
    """Parse a --canary value `churn@candidate=10` (percent in 0..100; the served name is the model's name)."""
    source, sep, pct = item.rpartition("=")
    if not sep or not source:
        raise RoostError(
            f"--canary {item!r}: expected MODEL=PERCENT", hint="e.g. --canary churn@candidate=10 (10 % of requests)"
        )
    try:
        percent = float(pct)
    except ValueError:
        raise RoostError(f"--canary {item!r}: {pct!r} is not a percentage", hint="e.g. churn@candidate=10") from None
    if not 0.0 <= percent <= 100.0:
        raise RoostError(f"--canary {item!r}: the percentage must be in 0..100, got {percent:g}")
    return CanarySpec(parse_spec(source), percent)


def share(request_id: str, seed: int = 0) -> float:
    """A seeded draw in [0, 100) from the request id: the same id always lands on the same side of a split."""
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100.0 / 2.0**64


def check_compatible(primary: LoadedModel, canary: LoadedModel) -> None:
    """Refuse a canary whose inputs differ from the primary's (requests are decoded against the primary)."""
    want = [(s.name, s.dtype) for s in primary.package.inputs]
    got = [(s.name, s.dtype) for s in canary.package.inputs]
    if want != got:
        raise RoostError(
            f"canary of {primary.name!r} takes different inputs than the served version {primary.version}",
            hint="a canary must be a version of the same model signature (same input names and dtypes)",
        )


def pick(
    primary: LoadedModel, canary: LoadedModel | None, percent: float, request_id: str, seed: int = 0
) -> LoadedModel:
    """The model that answers this request: the canary for `percent` % of request ids, else the primary."""
    if canary is None or percent <= 0.0:
        return primary
    return canary if share(request_id, seed) < percent else primary


# ---- shadow: mirror a share of requests to another version off the response path, record both answers --------
# One counter per process (not per writer): two writers flushing in the same second never pick the same name.
_FILE_SEQ = itertools.count()
SHADOW_DIR = "shadow"  # under the request-log folder: <log dir>/shadow/<model>/<YYYY-MM-DD>/<pid>-<seq>.parquet
SHADOW_SALT = 0x5AD0  # the shadow draw is independent of the canary draw for the same request id


def parse_shadow(item: str) -> CanarySpec:
    """Parse a --shadow value `churn@candidate[=P]` (P: percent of requests mirrored, default 100)."""
    source, sep, pct = item.rpartition("=")
    if sep and source and pct.replace(".", "", 1).isdigit():
        return parse_canary(item)
    return CanarySpec(parse_spec(item), 100.0)


def _score(model: LoadedModel, outputs: dict[str, np.ndarray], rows: int) -> tuple[str, np.ndarray]:
    """(name, rows x k float64) of the output compared: `probability`, else `probabilities`, else the first number."""
    names: list[str] = [n for n in ("probability", "probabilities") if n in outputs]
    names += [n for n, a in outputs.items() if a.dtype.kind in "fiub" and n not in names]
    if not names:
        return "", np.zeros((rows, 0))
    return names[0], np.asarray(outputs[names[0]], dtype=np.float64).reshape(rows, -1)


def _labels(model: LoadedModel, outputs: dict[str, np.ndarray], score: np.ndarray) -> np.ndarray | None:
    """Predicted labels as strings: the `label` output, else P >= 0.5 (binary) or argmax (multiclass); None else."""
    if "label" in outputs:
        labels: np.ndarray = np.asarray(outputs["label"]).reshape(-1).astype(str)
        return labels
    if model.package.task == "binary" and score.shape[1] == 1:
        return (score[:, 0] >= 0.5).astype(np.int64).astype(str)
    if model.package.task in ("binary", "multiclass") and score.shape[1] > 1:
        top: np.ndarray = score.argmax(axis=1).astype(str)
        return top
    return None


def compare(
    primary: LoadedModel, p_out: dict[str, np.ndarray], shadow: LoadedModel, s_out: dict[str, np.ndarray], rows: int
) -> dict[str, Any]:
    """Per-row comparison columns: both scores, max |difference| over the score's columns, label agreement."""
    name, p = _score(primary, p_out, rows)
    _, s = _score(shadow, s_out, rows)
    diff = np.abs(p - s).max(axis=1) if p.shape == s.shape and p.shape[1] else np.full(rows, np.nan)
    pl, sl = _labels(primary, p_out, p), _labels(shadow, s_out, s)
    return {
        "output": [name] * rows,
        "primary": [r.tolist() for r in p],
        "shadow": [r.tolist() for r in s],
        "abs_diff": diff,
        "primary_label": None if pl is None else pl.tolist(),
        "shadow_label": None if sl is None else sl.tolist(),
        "agree": None if pl is None or sl is None else (pl == sl).tolist(),
    }


class ShadowLog:
    """Buffers comparison rows and writes them as Parquet files (written as .part, renamed when complete)."""

    def __init__(self, directory: str | Path, flush_rows: int = 5000, flush_s: float = 5.0) -> None:
        self.directory = Path(directory) / SHADOW_DIR
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self._last = time.monotonic()
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, rows: list[dict[str, Any]]) -> bool:
        """Queue rows; True when the buffer is big or old enough to flush."""
        with self._lock:
            self._rows.extend(rows)
            return len(self._rows) >= self.flush_rows or time.monotonic() - self._last >= self.flush_s

    def flush(self) -> Path | None:
        """Write the buffered rows to one new file per model (blocking; call from a thread)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._lock:
            rows, self._rows = self._rows, []
            self._last = time.monotonic()
        if not rows:
            return None
        table = pa.Table.from_pylist(rows)
        last = None
        for model in sorted({r["model"] for r in rows}):
            part = table.filter(pa.compute.equal(table["model"], model))
            folder = self.directory / model / time.strftime("%Y-%m-%d", time.gmtime(rows[0]["_ts"].timestamp()))
            folder.mkdir(parents=True, exist_ok=True)
            last = folder / f"{time.strftime('%H%M%S')}-{os.getpid()}-{next(_FILE_SEQ):05d}.parquet"
            tmp = folder / f".{last.name}.part"
            pq.write_table(part, str(tmp), compression="zstd")
            tmp.rename(last)
        return last
