"""Evaluation metrics, kept importable here for existing code and examples; they live in `roost.metrics.overall`."""

from __future__ import annotations

from roost.metrics.overall import (
    EPS,
    PRIMARY,
    binary_metrics,
    compute,
    expected_calibration_error,
    log_loss_binary,
    multiclass_metrics,
    pr_auc,
    regression_metrics,
    roc_auc,
)

__all__ = [
    "EPS",
    "PRIMARY",
    "binary_metrics",
    "compute",
    "expected_calibration_error",
    "log_loss_binary",
    "multiclass_metrics",
    "pr_auc",
    "regression_metrics",
    "roc_auc",
]
