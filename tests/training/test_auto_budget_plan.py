"""`model: auto`'s selection under a time budget on a synthetic clock (only the fold models advance it) and the
costs measured on digits: every candidate whose cross-validation fits is cross-validated, the best child first."""

from __future__ import annotations

from roost.training.budget import SAFETY, Budget


class Clock:
    """A synthetic clock: time passes only when a fold model fits."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_auto_cross_validates_every_candidate_that_fits_the_best_first() -> None:
    """select() on digits' costs (measured 2026-12-06, quiet: the children's fits and validation log losses),
    on a synthetic clock that only the fold models advance: with 45 s left every candidate but the 8 s LightGBM
    fits, and each of them is cross-validated, the best child first. Today's code before the fix planned wide_deep +
    lightgbm_deep + a refit, cross-validated those two and nothing else (with 29 s still left) and never refitted
    (the three left out weighed in on the validation rows)."""
    import numpy as np
    import pandas as pd

    from roost.training.auto import AutoOptions
    from roost.training.auto_select import Costs, select
    from roost.training.models import make_model
    from roost.training.preprocess import infer_spec

    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 6))
    y = np.argmax(X[:, :3] + rng.normal(scale=0.5, size=(900, 3)), axis=1)
    df = pd.DataFrame(X, columns=[f"x{k}" for k in range(6)]).assign(label=[f"c{k}" for k in y])
    parts = (df.iloc[:540], df.iloc[540:720], df.iloc[720:])
    train, val = (p.drop(columns=["label"]) for p in parts[:2])
    spec = infer_spec(train)
    fit_s = {"lightgbm_defaults": 0.6, "logreg": 0.7, "lightgbm": 7.9, "lightgbm_deep": 1.1, "wide_deep": 2.0}
    val_loss = {"lightgbm_defaults": 0.121, "logreg": 0.162, "lightgbm": 0.108, "lightgbm_deep": 0.1207}
    val_loss["wide_deep"] = 0.1006
    clock = Clock()

    def model(name: str) -> object:
        m = make_model("lightgbm", task="multiclass", n_estimators=5, early_stopping_rounds=0)
        fit = m.fit

        def timed(*a, **kw):  # a fold model fits (k-1)/k of the 720 rows: the child's seconds scaled by rows
            clock.now += fit_s[name] * 576 / 540
            return fit(*a, **kw)

        m.fit = timed
        return m

    fitted = []
    for name in fit_s:
        child = make_model("lightgbm", task="multiclass", n_estimators=5, early_stopping_rounds=0)
        fitted.append((name, child.fit(train, parts[0]["label"], val, parts[1]["label"], spec=spec)))
    started: list[str] = []

    def make(name: str, n_fit: int) -> object:
        if not started or started[-1] != name:
            started.append(name)
        return model(name)

    costs = Costs(fit_s, dict.fromkeys(fit_s, 0.0), val_loss)
    budget = Budget(45.0, clock=clock)
    sel = select("multiclass", "label", spec, parts, fitted, AutoOptions(), make, 0, budget, costs)
    assert started[0] == "wide_deep", started  # the best child's cross-validation first
    assert set(started) == set(fit_s) - {"lightgbm"}, started  # everything whose estimate fits
    lgbm_cv = 5 * 7.9 * 576 / 540
    assert [s for s in sel.skipped if "cross-validation" in s] == [
        f"cross-validation of lightgbm (estimated {lgbm_cv:.0f} s, {budget.left():.0f} s left)"
    ]
    assert budget.left() * SAFETY - 1.5 < lgbm_cv  # it did not fit in what was left
    assert clock.now <= 45.0
