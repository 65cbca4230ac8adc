"""select()'s `Selection.cv` hands every cross-validated candidate's out-of-fold predictions and fold models to a
caller (bench/regression_replay.py replays blending rules on them offline: issue 36), and they are the ones the
selection used: recomputed by hand, they give its held-out RMSE and its blend's predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import mean_squared_error

from roost.training.auto import VARIANTS, AutoOptions
from roost.training.auto_select import select
from roost.training.models import make_model
from roost.training.preprocess import infer_spec


def test_selection_hands_out_each_candidates_out_of_fold_predictions_and_fold_models() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 4))
    df = pd.DataFrame(X, columns=list("abcd")).assign(y=X @ [3.0, -2.0, 1.0, 0.0] + rng.normal(size=240))
    parts = (df.iloc[:160], df.iloc[160:200], df.iloc[200:])
    spec = infer_spec(parts[0], label="y")
    names = ["lightgbm_defaults", "lightgbm"]
    params = {"lightgbm_defaults": VARIANTS["lightgbm_defaults"][1], "lightgbm": {"num_leaves": 4, "n_estimators": 300}}

    def make(cand: str, n_fit: int) -> object:
        return make_model("lightgbm", task="regression", **params[cand])

    fitted = [(n, type("Child", (), {"classes_": []})()) for n in names]
    sel = select("regression", "y", spec, parts, fitted, AutoOptions(refit=False), make, 0)
    assert set(sel.cv) == set(names)
    y = pd.concat([parts[0], parts[1]])["y"].to_numpy()
    test = parts[2].drop(columns=["y"])
    blend_oof = sum(sel.weights[n] * sel.cv[n][0] for n in names)
    assert np.isclose(np.sqrt(mean_squared_error(y, blend_oof)), sel.held["val_rmse"], rtol=1e-6)
    bags = {n: np.mean([np.asarray(m.predict(test), dtype=np.float64) for m in sel.cv[n][1]], axis=0) for n in names}
    assert all(len(sel.cv[n][1]) == 5 and len(sel.cv[n][0]) == len(y) for n in names)
    expected = sum(sel.weights[n] * bags[n] for n in names)
    assert np.allclose(np.asarray(sel.final.predict(test), dtype=np.float64), expected, rtol=1e-5, atol=1e-4)
