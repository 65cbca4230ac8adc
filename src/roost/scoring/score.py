"""Score one Arrow batch with a model package: kept columns + the prediction column. Runs on every engine's workers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from roost.modelpkg.predictor import PRIMARY
from roost.scoring.sources import arrow_feed

if TYPE_CHECKING:
    from roost.modelpkg.predictor import Predictor

_cache: dict[str, Predictor] = {}
_cache_lock = threading.Lock()


def cached_predictor(path: str | Path) -> Predictor:
    """One Predictor per package folder per process (executors and Ray workers load the model once)."""
    key = str(path)
    with _cache_lock:
        if key not in _cache:
            from roost.modelpkg import load

            _cache[key] = load(key)
        return _cache[key]


def prediction_name(task: str) -> str:
    """The output column: probability (binary), probabilities (multiclass) or prediction (regression)."""
    return PRIMARY[task]


def prediction_type(task: str) -> Any:
    """Arrow type of the prediction column: float64, or a list of float64 per row for multiclass."""
    import pyarrow as pa

    return pa.list_(pa.float64()) if task == "multiclass" else pa.float64()


def output_schema(input_schema: Any, keep: list[str], task: str) -> Any:
    """Arrow schema of the scored output: the kept input columns, then the prediction column."""
    import pyarrow as pa

    fields = [input_schema.field(c) for c in keep]
    return pa.schema([*fields, pa.field(prediction_name(task), prediction_type(task))])


def _prediction_array(task: str, scores: np.ndarray) -> Any:
    import pyarrow as pa

    if task == "multiclass":
        values = np.asarray(scores, dtype=np.float64)
        k = values.shape[1] if values.ndim == 2 else 0
        offsets = np.arange(0, len(values) * k + 1, k, dtype=np.int32) if k else np.zeros(1, np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()))
    return pa.array(np.asarray(scores, dtype=np.float64).reshape(-1))


def score_batch(pred: Predictor, batch: Any, keep: list[str]) -> Any:
    """The scored RecordBatch for an Arrow RecordBatch/Table: kept columns + prediction (row order kept)."""
    import pyarrow as pa

    schema = output_schema(batch.schema, keep, pred.task)
    if batch.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=schema)
    scores = pred.predict(arrow_feed(batch, pred.inputs))
    cols = [batch.column(c) for c in keep]
    if isinstance(batch, pa.Table):
        cols = [c.combine_chunks() for c in cols]
    return pa.RecordBatch.from_arrays([*cols, _prediction_array(pred.task, scores)], schema=schema)


def score_with_package(path: str, keep: list[str], batch: Any) -> Any:
    """`score_batch` with the package at `path`, loaded once per process (the function engines ship to workers)."""
    return score_batch(cached_predictor(path), batch, keep)


__all__ = [
    "cached_predictor",
    "prediction_name",
    "prediction_type",
    "output_schema",
    "score_batch",
    "score_with_package",
]
