"""Model quality with fixed seeds and splits (the full table is bench/quality.py)."""

from __future__ import annotations

import itertools
from typing import Any

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
    """Test ROC-AUC of LightGBM chosen by validation ROC-AUC over a small grid.

    Each grid point fits the LightGBM estimator `roost.train` would build for `model: {type: lightgbm, params}`
    on the same split, feature spec and early stopping, and scores it with scikit-learn's roc_auc_score; what a
    `roost.train` run adds on top (ONNX export and its parity check, monitoring reference, registry run) does not
    change the metrics and cost ~55-60% of a 200k-row run, x20 grid points (test_grid_fit_matches_roost_train shows
    a grid fit's metrics equal the run's)."""
    best = None
    for leaves, lr, mcs in itertools.product([7, 15, 31, 63, 127], [0.03, 0.1], [20, 200]):
        m = _lightgbm_metrics(cfg, {"num_leaves": leaves, "learning_rate": lr, "min_child_samples": mcs})
        if best is None or m["val_roc_auc"] > best["val_roc_auc"]:
            best = m
    assert best is not None
    return best["test_roc_auc"]


_PARTS: dict[str, tuple[Any, ...]] = {}


def _lightgbm_metrics(cfg: dict, params: dict[str, Any]) -> dict[str, float]:
    """val/test ROC-AUC (scikit-learn) of roost's LightGBM estimator with `params`, fitted as `roost.train` fits it."""
    from sklearn.metrics import roc_auc_score

    from roost.training.api import build_model, fit_spec
    from roost.training.config import TrainConfig
    from roost.training.data import check_label, load_frame, split

    tc = TrainConfig.model_validate({**cfg, "model": {"type": "lightgbm", "params": params}})
    key = repr(sorted(cfg.items()))
    if key not in _PARTS:  # one load, split and spec per table: the grid only changes the model
        df = load_frame(tc)
        task = check_label(df, tc.label, tc.task)
        tr, va, te = split(df, tc.split)
        _PARTS.clear()
        _PARTS[key] = (task, tr, va, te, fit_spec(tc, tr))
    task, tr, va, te, spec = _PARTS[key]
    model = build_model(tc, task, len(tr))
    label = tc.label
    model.fit(tr.drop(columns=[label]), tr[label], va.drop(columns=[label]), va[label], spec=spec)
    pos = model.classes_[1]
    return {
        f"{name}_roc_auc": float(roc_auc_score(part[label] == pos, model.predict(part.drop(columns=[label]))))
        for name, part in (("val", va), ("test", te))
    }


def test_grid_fit_matches_roost_train(ws) -> None:
    """A grid point's metrics (the reference above) equal those of `roost.train` with the same LightGBM params."""
    cfg = {"data": "engagement:6000:0", "label": "clicked", "split": {"method": "time", "column": "event_time"}}
    params = {"num_leaves": 15, "learning_rate": 0.1, "min_child_samples": 20}
    run = roost.train({**cfg, "model": {"type": "lightgbm", "params": params}}, progress=False).metrics
    grid = _lightgbm_metrics(cfg, params)
    assert grid["val_roc_auc"] == pytest.approx(run["val_roc_auc"], abs=1e-9)
    assert grid["test_roc_auc"] == pytest.approx(run["test_roc_auc"], abs=1e-9)


@pytest.mark.slow
def test_engagement_default_close_to_tuned_lightgbm(ws) -> None:
    """60,000 impressions: ~48,000 training + validation rows, over auto's cv_max_rows (20,000), so auto takes the
    same large-table path (children blended on the validation rows) as on the 200,000 rows this test used, for ~40%
    of the default's training time. Measured (seed 0): default - tuned = +0.016 test ROC-AUC here, +0.012 on 200,000
    rows; a big-table auto starved of budget (torch 1 epoch at lr 1e-5, LightGBM 15 trees) fails it (0.667 < 0.673).
    """
    cfg = {"data": "engagement:60000:0", "label": "clicked", "split": {"method": "time", "column": "event_time"}}
    default = roost.train(cfg, progress=False)  # no model named: roost's default
    assert roost.get_run(default.run_id)["tags"]["roost.auto.criterion"] == "validation roc_auc"  # not k-fold CV
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
