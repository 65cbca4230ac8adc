"""Metrics against scikit-learn (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from roost.metrics.overall import binary_metrics, expected_calibration_error, multiclass_metrics, regression_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0.001, 0.999)
    p[:50] = np.round(p[:50], 1)  # ties
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p >= 0.5), abs=1e-12)
    base = skm.log_loss(y, np.full(500, y.mean()))
    assert m["rce"] == pytest.approx(100 * (1 - skm.log_loss(y, p) / base), abs=1e-9)


def test_ece_matches_calibration_curve() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 2000)
    y = (rng.uniform(0, 1, 2000) < p**1.5).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts, _ = np.histogram(p, bins=np.linspace(0, 1, 11))
    counts = counts[counts > 0]
    ref = float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(y, p) == pytest.approx(ref, abs=1e-12)
    assert expected_calibration_error(y, y.astype(float)) == 0.0


def test_binary_single_class_auc_is_nan() -> None:
    m = binary_metrics(np.ones(10), np.full(10, 0.7))
    assert np.isnan(m["roc_auc"])


def test_multiclass_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4)) + 1.5 * np.eye(4)[y]
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = multiclass_metrics(y, P)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, P.argmax(1)), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, P, labels=[0, 1, 2, 3]), abs=1e-9)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, P.argmax(1), average="macro"), abs=1e-12)


def test_multiclass_macro_f1_with_unpredicted_class() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    P = np.eye(3)[[0, 1, 1, 1, 1, 0]]
    assert multiclass_metrics(y, P)["macro_f1"] == pytest.approx(
        skm.f1_score(y, P.argmax(1), average="macro", zero_division=0), abs=1e-12
    )


def test_regression_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    yhat = y + rng.normal(scale=0.5, size=300)
    m = regression_metrics(y, yhat)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)), abs=1e-12)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-12)
    assert m["r2"] == pytest.approx(skm.r2_score(y, yhat), abs=1e-12)
