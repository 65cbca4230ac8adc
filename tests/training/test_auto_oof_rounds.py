"""Honest out-of-fold predictions of early-stopping fold models (issue 36): `oof_rounds: others` scores each fold
model at the mean of the *other* folds' best rounds, so no scored row chose the round it is scored at; and the
convex linear candidate, which stops on nothing, fits all its fold rows under `inner_stop`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roost.errors import ConfigError
from roost.training.auto import AutoOptions, options
from roost.training.auto_select import select
from roost.training.ensemble import cross_fit, folds, others_rounds
from roost.training.lgbm import LightGBMModel
from roost.training.models import LogReg, WideDeepModel
from roost.training.preprocess import infer_spec


def _noise(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd")), pd.Series(rng.normal(size=n))


def _lgbm(**kw: Any) -> LightGBMModel:
    p = {"learning_rate": 0.3, "num_leaves": 8, "min_child_samples": 3, "n_estimators": 300, "n_jobs": 1}
    return LightGBMModel("regression", **{**p, **kw})


def test_others_rounds_is_the_mean_of_the_other_folds_best_rounds() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        best = [int(b) for b in rng.integers(1, 400, size=int(rng.integers(2, 11)))]
        brute = [max(1, round(np.mean([b for j, b in enumerate(best) if j != i]))) for i in range(len(best))]
        assert others_rounds(best) == brute


def test_lightgbm_fold_models_are_scored_at_the_other_folds_mean_best_round() -> None:
    import lightgbm as lgb

    X, y = _noise(120, 1)
    y = y + 2 * X["a"]
    spec = infer_spec(X)
    splits = folds("regression", y.to_numpy(), 5, 3)
    own, models = cross_fit(lambda: _lgbm(early_stopping_rounds=10), X, y, spec, splits)
    oof, again = cross_fit(lambda: _lgbm(early_stopping_rounds=10), X, y, spec, splits, rounds="others")
    best = [m.best_iteration_ for m in again]
    assert best == [m.best_iteration_ for m in models] and len(set(best)) > 1, "same fold models, different stops"
    for i, ((_, held), m) in enumerate(zip(splits, again)):
        # brute force: LightGBM's own booster, cut at the others' mean best round (capped at what it trained)
        booster: lgb.Booster = m.model_.booster_
        at = min(round(np.mean([b for j, b in enumerate(best) if j != i])), booster.current_iteration())
        np.testing.assert_allclose(oof[held], booster.predict(m.matrix(X.iloc[held]), num_iteration=at), rtol=1e-9)
        np.testing.assert_allclose(own[held], m.predict(X.iloc[held]), rtol=1e-9)  # "own": today's scores
    assert not np.allclose(oof, own)


@pytest.mark.slow  # 40-60 s on 2 loaded cores
def test_network_fold_models_are_scored_at_the_epoch_the_other_folds_chose() -> None:
    X, y = _noise(150, 2)
    y = y + X["a"] - X["b"]
    spec = infer_spec(X)
    splits = folds("regression", y.to_numpy(), 3, 0)

    def make() -> WideDeepModel:
        return WideDeepModel("regression", hidden=[8], epochs=25, patience=4, lr=0.05, seed=0)

    oof, models = cross_fit(make, X, y, spec, splits, rounds="others")
    best = [m.state_.best_epoch for m in models]
    for i, ((fit, held), m) in enumerate(zip(splits, models)):
        at = min(round(np.mean([b for j, b in enumerate(best) if j != i])), m.state_.epoch)
        # brute force: the same network trained for exactly `at` epochs without any validation rows
        alone = WideDeepModel("regression", hidden=[8], epochs=at, patience=4, lr=0.05, seed=0)
        alone.fit(X.iloc[fit], y.iloc[fit], spec=spec)
        np.testing.assert_allclose(oof[held], alone.predict(X.iloc[held]), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # 40-60 s on 2 loaded cores
def test_others_rounds_removes_most_of_the_flattery_of_stopping_on_the_scored_fold() -> None:
    # Pure-noise labels (y ~ N(0, 1) independent of X): a fold model's error on the population is exactly
    # 1 + E[prediction²] (brute force over 20,000 fresh rows). Honest out-of-fold MSE estimates it without bias;
    # a fold model stopping on the fold that scores it looks better there than it is.
    fresh = pd.DataFrame(np.random.default_rng(999).normal(size=(20_000, 4)), columns=list("abcd"))
    bias: dict[str, list[float]] = {"own": [], "others": [], "fixed": []}
    for seed in range(30):
        X, y = _noise(100, seed)
        spec = infer_spec(X)
        splits = folds("regression", y.to_numpy(), 5, seed)
        yy = y.to_numpy()
        own, models = cross_fit(lambda: _lgbm(early_stopping_rounds=30), X, y, spec, splits)
        oof, _ = cross_fit(lambda: _lgbm(early_stopping_rounds=30), X, y, spec, splits, rounds="others")
        best = [m.best_iteration_ for m in models]
        at = [min(others_rounds(best)[i], m.model_.booster_.current_iteration()) for i, m in enumerate(models)]
        pop_own = np.mean([1 + np.mean(m.predict(fresh) ** 2) for m in models])
        pop_at = np.mean([1 + np.mean(m.predict_at(fresh, r) ** 2) for m, r in zip(models, at)])
        bias["own"].append(float(np.mean((yy - own) ** 2) - pop_own))
        bias["others"].append(float(np.mean((yy - oof) ** 2) - pop_at))
        fixed, fm = cross_fit(lambda: _lgbm(early_stopping_rounds=0, n_estimators=3), X, y, spec, splits)
        bias["fixed"].append(
            float(np.mean((yy - fixed) ** 2) - np.mean([1 + np.mean(m.predict(fresh) ** 2) for m in fm]))
        )
    mean = {k: float(np.mean(v)) for k, v in bias.items()}
    se = float(np.std(bias["own"], ddof=1) / np.sqrt(len(bias["own"])))
    # the honest reference (a fixed round count: nothing was chosen on any fold) sets the noise floor
    assert mean["own"] < mean["fixed"] - 2 * se, mean
    assert mean["others"] - mean["fixed"] > 0.5 * (mean["own"] - mean["fixed"]), mean


def test_the_convex_linear_candidate_fits_every_fold_row_under_inner_stop() -> None:
    # it early-stops on nothing, so holding 20 % of its fold rows out for stopping only weakened it (and its
    # out-of-fold score beside the other candidates'); before the fix these out-of-fold predictions differed
    X, y = _noise(120, 4)
    y = y + X["a"]
    spec = infer_spec(X)
    splits = folds("regression", y.to_numpy(), 5, 0)
    plain, _ = cross_fit(lambda: LogReg("regression"), X, y, spec, splits)
    inner, _ = cross_fit(lambda: LogReg("regression"), X, y, spec, splits, inner=(0.2, None, 0))
    np.testing.assert_allclose(inner, plain, rtol=1e-9)
    stopped, _ = cross_fit(
        lambda: LogReg("regression", solver="sgd", epochs=3), X, y, spec, splits, inner=(0.2, None, 0)
    )
    looped, _ = cross_fit(lambda: LogReg("regression", solver="sgd", epochs=3), X, y, spec, splits)
    assert not np.allclose(stopped, looped), "the training loop still stops on an inner split"


def test_select_scores_at_the_other_folds_rounds_when_asked() -> None:
    X, y = _noise(200, 5)
    df = X.assign(label=(X["a"] + np.random.default_rng(5).normal(size=200) > 0).astype(int))
    parts = (df.iloc[:140], df.iloc[140:160], df.iloc[160:])
    made: list[LightGBMModel] = []

    def make(name: str, n_fit: int) -> LightGBMModel:
        m = LightGBMModel("binary", learning_rate=0.3, n_estimators=200, early_stopping_rounds=10, n_jobs=1)
        made.append(m)
        return m

    fitted = [(n, SimpleNamespace(classes_=[0, 1])) for n in ("a", "b")]
    spec = infer_spec(df.drop(columns=["label"]))
    sel = select("binary", "label", spec, parts, fitted, AutoOptions(refit=False, oof_rounds="others"), make, 0)
    assert "other folds' best rounds" in sel.criterion
    base = select("binary", "label", spec, parts, fitted, AutoOptions(refit=False), make, 0)
    assert "other folds" not in base.criterion
    assert not np.allclose(sel.cv["a"][0], base.cv["a"][0])


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_oof_rounds_is_checked(value: Any) -> None:
    from roost.training.config import TrainConfig

    model = {"type": "auto", "params": {"oof_rounds": value}}
    cfg = TrainConfig.model_validate({"data": "x.csv", "label": "y", "model": model})
    with pytest.raises(ConfigError, match="oof_rounds"):
        options(cfg)
