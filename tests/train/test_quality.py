"""Model quality with fixed seeds and splits (the full table is bench/quality.py)."""

from __future__ import annotations

import itertools

import pytest

import roost


def test_breast_cancer_logreg(ws) -> None:
    res = roost.train(
        {
            "data": "sklearn:breast_cancer",
            "label": "target",
            "model": "logreg",
            "split": {"method": "random", "seed": 0},
        },
        progress=False,
    )
    assert res.metrics["test_roc_auc"] >= 0.99


def _tuned_lightgbm(cfg: dict) -> float:
    """Test ROC-AUC of LightGBM chosen by validation ROC-AUC over a small grid."""
    best = None
    for leaves, lr, mcs in itertools.product([7, 15, 31, 63, 127], [0.03, 0.1], [20, 200]):
        m = roost.train(
            {
                **cfg,
                "model": {
                    "type": "lightgbm",
                    "params": {"num_leaves": leaves, "learning_rate": lr, "min_child_samples": mcs},
                },
            },
            progress=False,
        ).metrics
        if best is None or m["val_roc_auc"] > best["val_roc_auc"]:
            best = m
    assert best is not None
    return best["test_roc_auc"]


@pytest.mark.slow
def test_engagement_default_close_to_tuned_lightgbm(ws) -> None:
    cfg = {"data": "engagement:200000:0", "label": "clicked", "split": {"method": "time", "column": "event_time"}}
    default = roost.train(cfg, progress=False)  # no model named: roost's default
    assert default.metrics["test_roc_auc"] >= _tuned_lightgbm(cfg) - 0.005


@pytest.mark.slow
def test_flights_default_close_to_tuned_lightgbm(ws, tmp_path) -> None:
    from roost.datasets.flights import FEATURES, delay_frame

    path = tmp_path / "flights.parquet"
    delay_frame().to_parquet(path)
    cfg = {
        "data": str(path),
        "label": "delayed",
        "features": FEATURES,
        "split": {"method": "time", "column": "sched_dep_time", "test_start": "2013-11-01T04:00:00Z"},
    }
    default = roost.train(cfg, progress=False)
    assert default.metrics["test_roc_auc"] >= _tuned_lightgbm(cfg) - 0.005
