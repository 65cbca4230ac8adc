"""A model package's own score: the test_* metrics of the exported float32 graph on the test rows (ONNX Runtime)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.training.base import Estimator

log = logging.getLogger(__name__)


def package_test_metrics(pkg: Path, model: Estimator, test_df: Any, label: str, metrics: dict[str, float]) -> bool:
    """Replace the test_* entries of `metrics` by the package's score on the test rows (ONNX Runtime); False, and
    `metrics` untouched, without test rows or test metrics, or for a package that does not score a frame."""
    import numpy as np

    from roost.errors import RoostError
    from roost.modelpkg import load
    from roost.training import metrics as M
    from roost.training.preprocess import encode_labels

    task = getattr(model, "task_", None)
    if task not in ("binary", "multiclass", "regression") or not len(test_df):
        return False
    if not any(k.startswith("test_") for k in metrics):
        return False
    try:
        out = np.asarray(load(pkg).predict(test_df.drop(columns=[label])), dtype=np.float64)
    except RoostError as exc:  # e.g. a package fed by the online store: keep the in-memory model's score
        log.warning("test metrics from the in-memory model: the package could not score the test rows (%s)", exc)
        return False
    y = encode_labels(test_df[label], task, model.classes_ or None)[0]
    metrics.update({f"test_{k}": v for k, v in M.compute(task, y, out).items()})
    return True


def rewrite_metrics(pkg: Path, metrics: dict[str, float]) -> None:
    """Store `metrics` in the package's roost-model.yaml."""
    import yaml

    from roost.modelpkg.package import META, read_meta

    meta = read_meta(pkg)
    meta["metrics"] = {k: float(v) for k, v in metrics.items()}
    (pkg / META).write_text(yaml.safe_dump(meta, sort_keys=False))
