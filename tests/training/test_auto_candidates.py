"""auto's candidate set covers a LightGBM with LightGBM's usual capacity on small tables (issue 36 item 5: on the
6,259-row computers table the only early-stopping LightGBM had 7 leaves — test RMSE 160.9 as a child, 154.2 with
31 leaves, tuned LightGBM 148.9 — and auto missed the 1 % by 3.6 %), and for regression one whose leaves go down to
3 rows (tuned LightGBM chose min_child_samples 2 on every computers split; auto still missed by 2.2 %)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from roost.training.auto import candidate_config, candidates, table_candidates
from roost.training.config import TrainConfig


def _cfg(**params: Any) -> TrainConfig:
    return TrainConfig.model_validate({"data": "x.csv", "label": "y", "model": {"type": "auto", "params": params}})


def _lightgbms(cands: list[str], rows: int, cols: int) -> list[dict[str, Any]]:
    """The resolved parameters of every LightGBM candidate for a table of `rows` training rows."""
    from roost.training.lgbm import LightGBMModel

    out = []
    for c in cands:
        sub = candidate_config(_cfg(), c, rows, cols)
        if sub.model.type == "lightgbm":
            out.append({**LightGBMModel.DEFAULTS, **sub.model.params})
    return out


def test_small_tables_get_an_early_stopping_lightgbm_of_usual_capacity() -> None:
    for rows in (500, 5_000):
        lgbs = _lightgbms(table_candidates(candidates(_cfg()), rows, 9), rows, 9)
        assert any(p["num_leaves"] >= 7 and p["num_leaves"] < 31 for p in lgbs), "the small-table LightGBM stays"
        deep = [p for p in lgbs if p["num_leaves"] >= 31 and p["early_stopping_rounds"] > 0]
        assert deep and all(p["n_estimators"] >= 1000 for p in deep), lgbs


def test_large_tables_do_not_fit_the_same_lightgbm_twice() -> None:
    cands = table_candidates(candidates(_cfg()), 50_000, 9)
    lgbs = _lightgbms(cands, 50_000, 9)
    seen = [sorted((k, v) for k, v in p.items() if k not in ("n_estimators", "log_every")) for p in lgbs]
    assert len(seen) == len({str(s) for s in seen}), cands
    # a list the user wrote is theirs: only the default set is trimmed
    assert table_candidates(["lightgbm", "lightgbm_deep"], 50_000, 9, default=False) == ["lightgbm", "lightgbm_deep"]


def test_regression_gets_a_lightgbm_with_small_leaves_in_lightgbm_deeps_place() -> None:
    for rows in (400, 5_000, 50_000):
        cands = table_candidates(candidates(_cfg()), rows, 9, task="regression")
        lgbs = _lightgbms(cands, rows, 9)
        fine = [p for p in lgbs if p["min_child_samples"] <= 5 and p["early_stopping_rounds"] > 0]
        assert fine and all(p["num_leaves"] >= 31 and p["n_estimators"] >= 1000 for p in fine), (rows, cands)
        binary = table_candidates(candidates(_cfg()), 5_000, 9)
        assert len(cands) == len(binary) + 1 and cands[-1] == "logreg_log", "one extra: the linear log-label model"
    # classification was not measured with it: its set is unchanged
    assert table_candidates(candidates(_cfg()), 5_000, 9, task="binary") == table_candidates(
        candidates(_cfg()), 5_000, 9
    )


def _lookup_table(n: int, seed: int) -> pd.DataFrame:
    """y = a fixed random value per (a, b, c) (64 cells, ~15 training rows each) + N(0, 1) noise: a price-list-like
    table whose cells LightGBM can only separate with leaves of fewer than 20 rows."""
    rng = np.random.default_rng(seed)
    cell = np.random.default_rng(99).normal(size=(4, 4, 4)) * 10
    X = rng.integers(0, 4, size=(n, 3))
    df = pd.DataFrame(X.astype(float), columns=["a", "b", "c"]).assign(noise=rng.normal(size=n))
    return df.assign(y=cell[X[:, 0], X[:, 1], X[:, 2]] + rng.normal(size=n))


def _default_lightgbm_predictions(task: str, train: pd.DataFrame, val: pd.DataFrame, test: pd.DataFrame) -> dict:
    """Each default LightGBM candidate of `task`, fitted as auto fits it (label y), predicting the test rows."""
    from roost.training.from_config import build_model
    from roost.training.preprocess import infer_spec

    X, Xv, Xt = (d.drop(columns=["y"]) for d in (train, val, test))
    cfg = TrainConfig.model_validate({"data": "x.csv", "label": "y", "task": task})
    spec = infer_spec(train, label="y")
    out = {}
    for c in table_candidates(candidates(_cfg()), len(train), 4, task=task):
        sub = candidate_config(cfg, c, len(train), 4)
        if sub.model.type == "lightgbm":
            model = build_model(sub, task, len(train)).fit(X, train["y"], Xv, val["y"], spec=spec)
            out[c] = np.asarray(model.predict(Xt))
    return out


def test_regressions_default_lightgbms_reach_a_lookup_tables_cells() -> None:
    from sklearn.metrics import mean_squared_error

    train, val, test = _lookup_table(960, 0), _lookup_table(240, 1), _lookup_table(2000, 2)
    # independent reference: the brute-force cell means of the training rows (the exact estimator for this table)
    means = train.groupby(["a", "b", "c"])["y"].mean()
    ref = np.sqrt(mean_squared_error(test["y"], means.reindex(pd.MultiIndex.from_frame(test[["a", "b", "c"]]))))
    preds = _default_lightgbm_predictions("regression", train, val, test)
    got = {c: float(np.sqrt(mean_squared_error(test["y"], p))) for c, p in preds.items()}
    # before: the best LightGBM candidate (lightgbm_deep, leaves of >= 20 rows) 2.40 = 2.35x the cell means' 1.02;
    # now lightgbm_fine 1.36 = 1.33x
    assert min(got.values()) <= 1.6 * ref, (ref, got)


def test_multiclass_gets_a_bagged_lightgbm_in_lightgbm_deeps_place() -> None:
    for rows in (400, 5_000):
        cands = table_candidates(candidates(_cfg()), rows, 64, task="multiclass")
        lgbs = _lightgbms(cands, rows, 64)
        bagged = [p for p in lgbs if p["subsample"] < 1 and p["colsample_bytree"] < 1 and p["num_leaves"] >= 31]
        assert bagged and all(p["early_stopping_rounds"] > 0 and p["n_estimators"] >= 1000 for p in bagged), cands
        binary = table_candidates(candidates(_cfg()), rows, 64, task="binary")
        assert len(cands) == len(binary) + 1 and cands[-1] == "lightgbm_large", "bagged in deep's place, one extra"
    # binary was not measured with it: its set is unchanged, and no LightGBM there bags rows
    binary = table_candidates(candidates(_cfg()), 5_000, 64, task="binary")
    assert binary == table_candidates(candidates(_cfg()), 5_000, 64)
    assert all(p["subsample"] == 1 for p in _lightgbms(binary, 5_000, 64))


def _choice_table(n: int, seed: int) -> pd.DataFrame:
    """A class per (a, b, c) cell (216 cells, ~7 training rows each) drawn once, kept by 75 % of the rows (the
    others: any class): a brand-choice-like table whose cells LightGBM can only reach with leaves of a few rows."""
    rng = np.random.default_rng(seed)
    cell = np.random.default_rng(99).integers(0, 4, size=(6, 6, 6))
    X = rng.integers(0, 6, size=(n, 3))
    y = np.where(rng.random(n) < 0.25, rng.integers(0, 4, n), cell[X[:, 0], X[:, 1], X[:, 2]])
    df = pd.DataFrame(X.astype(float), columns=["a", "b", "c"]).assign(noise=rng.normal(size=n))
    return df.assign(y=np.array(list("pqrs"))[y])


def test_multiclasss_default_lightgbms_reach_a_choice_tables_cells() -> None:
    from sklearn.metrics import log_loss

    train, val, test = _choice_table(1500, 0), _choice_table(300, 1), _choice_table(3000, 2)
    classes = sorted(train["y"].unique())
    # independent reference: each cell's class frequencies in the training rows, add-one smoothed (uniform where a
    # test row's cell has no training row)
    counts = train.groupby(["a", "b", "c"])["y"].value_counts().unstack(fill_value=0).reindex(columns=classes) + 1
    freq = counts.div(counts.sum(axis=1), axis=0).reindex(pd.MultiIndex.from_frame(test[["a", "b", "c"]]))
    ref = log_loss(test["y"], freq.fillna(1 / len(classes)).to_numpy(), labels=classes)
    preds = _default_lightgbm_predictions("multiclass", train, val, test)
    got = {c: log_loss(test["y"], p, labels=classes) for c, p in preds.items()}
    # before: the best LightGBM candidate (lightgbm_defaults) 1.153 = 1.39x the cell frequencies' 0.832; now
    # lightgbm_large 1.006 = 1.21x
    assert min(got.values()) <= 1.3 * ref, (ref, got)
