"""auto's small-table LightGBM candidate: early stopping, not the rounds cap, ends it (regression, issue 36)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from roost.training.auto import candidate_config
from roost.training.config import TrainConfig
from roost.training.from_config import build_model
from roost.training.preprocess import infer_spec


def test_the_small_table_lightgbm_candidate_stops_early_instead_of_at_its_rounds_cap() -> None:
    # a smooth surface with interactions and little noise: 7-leaf trees at learning rate 0.03 keep improving on
    # held-out rows for well over the model's default 1000 rounds
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(rng.uniform(-2, 2, size=(n, 6)), columns=[f"x{k}" for k in range(6)])
    y = pd.Series(10 * X.x0 * X.x1 + 8 * np.sin(2 * X.x2) * X.x3 + 5 * X.x4**2 + rng.normal(0, 0.3, n), name="y")
    cut = int(n * 0.8)
    cfg = TrainConfig.model_validate({"data": "x.parquet", "label": "y", "model": "auto"})
    sub = candidate_config(cfg, "lightgbm", cut, 6)
    model = build_model(sub, "regression", cut)
    spec = infer_spec(pd.concat([X, y], axis=1), label="y")
    model.fit(X[:cut], y[:cut], X[cut:], y[cut:], spec=spec)
    assert model.params["num_leaves"] == 7  # the small-table settings apply
    cap = model.params["n_estimators"]
    assert 1000 < model.best_iteration_ < cap  # past the model's old cap, and ended by early stopping

    # and held-out rows gained from the rounds past 1000 (an independent check on LightGBM's own booster)
    def rmse(rounds: int) -> float:
        pred = model.model_.predict(model.matrix(X[cut:]), num_iteration=rounds)
        return float(np.sqrt(np.mean((pred - y[cut:].to_numpy()) ** 2)))

    assert rmse(model.best_iteration_) < rmse(1000)
