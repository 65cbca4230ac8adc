"""A candidate whose cross-validation did not fit in the budget is weighed on the validation rows, not dropped
(issue 36 item 5: on digits under the default budget the best child's cross-validation did not fit, so auto kept
LightGBM's defaults alone: log loss 0.064 against 0.033 for tuned LightGBM)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from roost.training.auto import VARIANTS, AutoOptions
from roost.training.auto_select import Costs, select
from roost.training.budget import Budget
from roost.training.models import make_model
from roost.training.preprocess import infer_spec


def _table(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Three classes from a linear softmax of 8 numeric columns: a linear model's table."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    logits = X @ rng.normal(size=(8, 3)) * 1.5
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return pd.DataFrame(X, columns=[f"x{k}" for k in range(8)]).assign(label=[f"c{k}" for k in y])


def _lgbm_defaults(n_fit: int = 0) -> object:
    return make_model("lightgbm", task="multiclass", **VARIANTS["lightgbm_defaults"][1])


def test_a_child_whose_cross_validation_did_not_fit_still_counts() -> None:
    df = _table()
    parts = (df.iloc[:540], df.iloc[540:720], df.iloc[720:])
    train, val, test = (p.drop(columns=["label"]) for p in parts)
    spec = infer_spec(train)
    cheap = _lgbm_defaults().fit(train, parts[0]["label"], val, parts[1]["label"], spec=spec)
    linear = make_model("logreg", task="multiclass").fit(train, parts[0]["label"], val, parts[1]["label"], spec=spec)
    fitted = [("lightgbm_defaults", cheap), ("logreg", linear)]
    classes = list(cheap.classes_)
    # brute force: each child on the validation rows and the test rows (sklearn's log loss)
    val_loss = {n: log_loss(parts[1]["label"], m.predict(val), labels=classes) for n, m in fitted}
    test_loss = {n: log_loss(parts[2]["label"], m.predict(test), labels=classes) for n, m in fitted}
    assert val_loss["logreg"] < val_loss["lightgbm_defaults"] and test_loss["logreg"] < test_loss["lightgbm_defaults"]

    # the budget (a frozen clock: 20 s left) fits LightGBM's cross-validation, not the linear model's (1,000 s a fit)
    costs = Costs({"lightgbm_defaults": 0.05, "logreg": 1000.0}, {"lightgbm_defaults": 0.0, "logreg": 0.0}, {})
    budget = Budget(20.0, clock=itertools.repeat(0.0).__next__)

    def make(cand: str, n_fit: int) -> object:
        assert cand == "lightgbm_defaults", f"{cand} was cross-validated against the plan"
        return _lgbm_defaults()

    sel = select("multiclass", "label", spec, parts, fitted, AutoOptions(), make, 0, budget, costs)
    assert any("logreg" in s for s in sel.skipped), "the plan left the linear model's cross-validation out"
    assert sel.weights["logreg"] > 0, f"the better child was dropped: {sel.weights}"
    final = sel.final[1] if isinstance(sel.final, tuple) else sel.final  # (name, child) when it takes all the weight
    got = log_loss(parts[2]["label"], final.predict(test), labels=classes)
    assert got < test_loss["lightgbm_defaults"], "the selection scores like the cross-validated child alone"
    assert got <= test_loss["logreg"] * 1.05, f"{got:.4f} vs the better child's {test_loss['logreg']:.4f}"
