"""auto's refit on all rows fits a convex member (the linear candidate) once on every row with its whole weight,
not as a bag of fold models on (k-1)/k of the rows each; early-stopping members keep their k fold models (issue 36;
bench/linear_refit.py). Before this change the linear member was a bag of k fold models: the first two tests failed.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from roost.training.auto import AutoOptions
from roost.training.auto_select import select
from roost.training.models import make_model
from roost.training.preprocess import infer_spec

K = 4


def _table(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A logistic truth linear in four numeric columns plus one categorical column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    logit = X @ [1.5, -1.0, 0.7, 0.0] + 0.3
    df = pd.DataFrame(X, columns=list("abcd"))
    df["e"] = rng.choice(["u", "v", "w"], size=n)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    return df


def _make(name: str, n_fit: int) -> Any:
    if name == "logreg":
        return make_model("logreg", task="binary")
    return make_model("lightgbm", task="binary", n_estimators=200, num_leaves=4, early_stopping_rounds=10, n_jobs=1)


def _select(names: list[str]) -> tuple[Any, tuple[Any, Any, Any], Any]:
    df = _table()
    parts = (df.iloc[:150], df.iloc[150:180], df.iloc[180:])
    spec = infer_spec(df.drop(columns=["label"]))
    fitted = [(n, SimpleNamespace(classes_=[0, 1])) for n in names]
    sel = select("binary", "label", spec, parts, fitted, AutoOptions(folds=K, refit=True), _make, 0)
    return sel, parts, spec


def _direct(parts: tuple[Any, Any, Any], spec: Any, X: pd.DataFrame) -> np.ndarray:
    """The linear model fitted directly on every row (training, validation and test parts)."""
    every = pd.concat(list(parts))
    m = make_model("logreg", task="binary").fit(every.drop(columns=["label"]), every["label"], spec=spec)
    assert m.refit_once(len(every), spec), "the linear candidate is a convex solve on this table"
    return np.asarray(m.predict(X), dtype=np.float64)


def test_a_blend_of_the_linear_member_alone_is_the_linear_model_fitted_once_on_all_rows() -> None:
    sel, parts, spec = _select(["logreg"])
    X = pd.concat(list(parts)).drop(columns=["label"])
    assert sel.refit and len(sel.final.members) == 1
    got = np.asarray(sel.final.predict(X), dtype=np.float64)
    assert np.max(np.abs(got - _direct(parts, spec, X))) <= 1e-6  # Blend.predict returns float32
    member = np.asarray(sel.final.members[0][1].predict(X), dtype=np.float64)
    assert np.max(np.abs(member - _direct(parts, spec, X))) <= 1e-9


def test_the_refit_fits_the_linear_member_once_and_keeps_the_early_stopping_members_fold_bag() -> None:
    sel, parts, spec = _select(["logreg", "lightgbm"])
    assert sel.weights["logreg"] > 0 and sel.weights["lightgbm"] > 0
    names = [n for n, _ in sel.final.members]
    assert names.count("logreg") == 1 and names.count("lightgbm") == K
    w = dict(zip(names, sel.final.weights))
    assert np.isclose(w["logreg"], sel.weights["logreg"] / sum(sel.weights.values()))
    assert all(m.params["early_stopping_rounds"] and not m.refit_once(240, spec) for n, m in sel.final.members[1:])
    every = pd.concat(list(parts))
    X = every.drop(columns=["label"])
    linear = next(m for n, m in sel.final.members if n == "logreg")
    assert np.max(np.abs(np.asarray(linear.predict(X), dtype=np.float64) - _direct(parts, spec, X))) <= 1e-9
    assert "logreg once" in sel.refit
    # refit_oof_roc_auc: the refit fold models' out-of-fold predictions over the training + validation rows (the
    # folds recomputed with scikit-learn) and the linear member's cross-validation out-of-fold predictions
    y = every["label"].to_numpy()
    n_cv = len(parts[0]) + len(parts[1])
    oof = np.zeros(len(every))
    bag = [m for n, m in sel.final.members if n == "lightgbm"]
    for m, (_, held) in zip(bag, StratifiedKFold(K, shuffle=True, random_state=0).split(X, y)):
        oof[held] = np.asarray(m.predict(X.iloc[held]), dtype=np.float64)
    total = sel.weights["logreg"] + sel.weights["lightgbm"]
    blend = (sel.weights["lightgbm"] * oof[:n_cv] + sel.weights["logreg"] * sel.cv["logreg"][0]) / total
    assert np.isclose(sel.extra["refit_oof_roc_auc"], roc_auc_score(y[:n_cv], blend), atol=1e-9)


def test_lightgbm_at_fixed_rounds_keeps_its_fold_bag() -> None:
    spec = infer_spec(_table().drop(columns=["label"]))
    fixed = make_model("lightgbm", task="binary", n_estimators=100, early_stopping_rounds=0)
    assert not fixed.refit_once(240, spec)
    assert not make_model("logreg", task="binary", solver="sgd").refit_once(240, spec)  # the training loop


def test_roost_train_registers_the_linear_model_fitted_once_on_every_row(ws, tmp_path) -> None:
    import roost
    from helpers import mixed_frame
    from roost.training.auto import candidate_config, prepare
    from roost.training.from_config import build_model

    features = ["x1", "x2", "color", "user_id"]
    data = tmp_path / "d.parquet"
    mixed_frame(300).to_parquet(data)
    cfg = {"data": str(data), "label": "clicked", "features": features, "time_budget": None}
    cfg["model"] = {"type": "auto", "params": {"candidates": ["logreg"], "folds": 3}}
    res = roost.train(cfg, progress=False)
    assert "logreg once" in res.refit
    conf, task, spec, parts = prepare(cfg)
    every = pd.concat(list(parts))
    n_fit = (len(parts[0]) + len(parts[1])) - (len(parts[0]) + len(parts[1])) // 3  # a fold model's rows
    direct = build_model(candidate_config(conf, "logreg", n_fit, len(spec.columns)), task, n_fit)
    direct.fit(every[features], every["clicked"], spec=spec)
    package = np.asarray(roost.load_model(res.package_path).predict(every[features]), dtype=np.float64)
    assert np.max(np.abs(package - np.asarray(direct.predict(every[features]), dtype=np.float64))) <= 1e-5
