"""Small tables (issue 36 item 3): auto's selection never scores a fold model on rows it early-stopped on, and
repeats its folds below the row threshold, averaging each row's out-of-fold predictions."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roost.errors import ConfigError
from roost.training.auto import AutoOptions, options
from roost.training.auto_select import select
from roost.training.ensemble import cross_fit, repeated_folds
from roost.training.lgbm import LightGBMModel
from roost.training.preprocess import infer_spec


class Recorder(LightGBMModel):
    """LightGBM that records the rows it fitted, early-stopped on and was scored on."""

    def fit(self, X: pd.DataFrame, y: pd.Series, X_val: Any = None, y_val: Any = None, **kw: Any) -> Recorder:
        self.fit_rows = set(X.index)
        self.stop_rows = set() if X_val is None else set(X_val.index)
        self.scored: set[int] = set()
        return super().fit(X, y, X_val, y_val, **kw)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.scored |= set(X.index)
        return super().predict(X)


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(size=n) > 0).astype(int)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})


def _select(n: int, **opts: Any) -> tuple[dict[str, list[Recorder]], set[int], Any]:
    """select() over two LightGBM candidates (one early-stopping, one not) on an n-row table: the fold models made
    per candidate, the cross-validation rows and the selection."""
    df = _table(n)
    a, b = int(n * 0.7), int(n * 0.8)
    parts = (df.iloc[:a], df.iloc[a:b], df.iloc[b:])
    made: dict[str, list[Recorder]] = {"stops": [], "no_stop": []}

    def make(name: str, n_fit: int) -> Recorder:
        m = Recorder("binary", n_estimators=30, early_stopping_rounds=5 if name == "stops" else 0, n_jobs=1)
        made[name].append(m)
        return m

    fitted = [(name, SimpleNamespace(classes_=[0, 1])) for name in made]
    spec = infer_spec(df.drop(columns=["label"]))
    sel = select("binary", "label", spec, parts, fitted, AutoOptions(refit=False, **opts), make, 0)
    return made, set(df.index[:b]), sel


AUTO = {"repeats": "auto", "inner_stop": "auto"}


def test_no_fold_model_early_stops_on_the_rows_that_score_it() -> None:
    made, rows, _ = _select(150, **AUTO)
    assert made["stops"] and made["no_stop"]
    for m in made["stops"]:
        assert m.scored and m.stop_rows, "every fold model is scored and has early-stopping rows"
        assert not m.stop_rows & m.scored, "a fold model early-stopped on rows it is scored on"
        assert not m.fit_rows & m.scored and not m.fit_rows & m.stop_rows
    for m in made["no_stop"]:  # nothing to stop on: it fits every row its fold does not score
        assert not m.stop_rows and m.fit_rows == rows - m.scored


def test_small_tables_repeat_the_folds_and_large_ones_do_not() -> None:
    made, rows, sel = _select(150, **AUTO)
    models = made["stops"]
    assert len(models) > 5 and len(models) % 5 == 0, "repeated 5-fold below the row threshold"
    reps = len(models) // 5
    assert sel.extra["auto.cv_repeats"] == reps
    scored = [r for m in models for r in m.scored]
    assert sorted(scored) == sorted(list(rows) * reps), "each round holds every row out once"
    rounds = [frozenset(frozenset(m.scored) for m in models[i : i + 5]) for i in range(0, len(models), 5)]
    assert len(set(rounds)) == reps, "each round reshuffles the folds"
    kept = [sum(1 for n, _ in sel.final.members if n == name) for name in made]
    assert sum(kept) and all(k in (0, len(models)) for k in kept), "the blend keeps every round's fold models"

    made, rows, sel = _select(1400, **AUTO)
    assert len(made["stops"]) == 5 and sel.extra["auto.cv_repeats"] == 1
    assert all(m.stop_rows == m.scored for m in made["stops"]), "large tables keep stopping on the held fold"


def test_repeats_and_inner_stop_can_be_set() -> None:
    made, _, sel = _select(150, repeats=1, inner_stop=False)
    assert len(made["stops"]) == 5 and all(m.stop_rows == m.scored for m in made["stops"])
    made, _, _ = _select(1400, repeats=2, inner_stop=True)
    assert len(made["stops"]) == 10 and not any(m.stop_rows & m.scored for m in made["stops"])


def test_repeated_out_of_fold_predictions_are_each_rows_mean() -> None:
    df = _table(60)
    X, y = df.drop(columns=["label"]), df["label"]
    splits = repeated_folds("binary", y.to_numpy(), 3, 7, 4)
    oof, models = cross_fit(
        lambda: Recorder("binary", n_estimators=5, early_stopping_rounds=0, n_jobs=1), X, y, infer_spec(X), splits
    )
    expected = np.zeros(len(X))
    for i in range(len(X)):  # brute force: every model that held row i out, predicting it alone
        preds = [float(m.predict(X.iloc[[i]])[0]) for m, (_, held) in zip(models, splits) if i in held]
        assert len(preds) == 4
        expected[i] = np.mean(preds)
    np.testing.assert_allclose(oof, expected, rtol=1e-6)


@pytest.mark.parametrize("params", [{"repeats": 0}, {"repeats": "many"}, {"repeats": True}, {"inner_stop": "yes"}])
def test_repeat_options_are_checked(params: dict[str, Any]) -> None:
    from roost.training.config import TrainConfig

    cfg = TrainConfig.model_validate({"data": "x.csv", "label": "y", "model": {"type": "auto", "params": params}})
    with pytest.raises(ConfigError, match=next(iter(params))):
        options(cfg)


def test_repeats_fit_the_time_budget_without_cutting_anything_else() -> None:
    from roost.training.auto_select import Costs, _plan_repeats
    from roost.training.budget import Budget

    names = ["a", "b"]
    costs = Costs({"a": 1.0, "b": 2.0}, {"a": 0.1, "b": 0.1}, {"a": 0.8, "b": 0.79})
    sizes = (100, 120, 30)  # training, training + validation, test rows
    seen = []
    for seconds in [1, 5, 20, 40, 60, 90, 130, 200, 400, 1e6]:
        budget = Budget(seconds, clock=lambda: 0.0)
        one, _ = _plan_repeats(budget, costs, names, AutoOptions(repeats=1), 5, "max", sizes)
        plan, reps = _plan_repeats(budget, costs, names, AutoOptions(repeats="auto"), 5, "max", sizes)
        assert (plan.cv, plan.folds, plan.refit) == (one.cv, one.folds, one.refit), "rounds never cut anything"
        assert plan.seconds <= seconds * 0.85 + 1e-9 or not plan.cv
        seen.append(reps)
    assert seen == sorted(seen) and seen[0] == 1 and seen[-1] == 5, seen
    assert _plan_repeats(Budget(None), None, names, AutoOptions(repeats="auto"), 5, "max", (1000, 1200, 300))[1] == 1


def test_both_are_off_by_default_as_measured() -> None:
    # bench/RESULTS.md (13 tables × 10 splits): −0.0005 ± 0.0015 ROC-AUC on the package, no gain: both stay off
    made, _, sel = _select(150)
    assert len(made["stops"]) == 5 and all(m.stop_rows == m.scored for m in made["stops"])
