"""`target: log` (issue 36): roost's linear model fitted on log(label) against scikit-learn's RidgeCV on the log of
the same labels over an independently built design matrix (StandardScaler + OneHotEncoder), back-transformed with
Duan's smearing factor computed here; its package, its explanation, its bad inputs, and `model: auto`'s
`logreg_log` candidate (regression, every label above 0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

N_TRAIN, N_TEST = 300, 400


def _prices(seed: int = 0, n: int = N_TRAIN + N_TEST) -> tuple[pd.DataFrame, pd.Series]:
    """A price with multiplicative effects: log(price) is linear in the columns, with noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"size": rng.uniform(20, 200, n), "rooms": rng.integers(1, 7, n).astype(float)})
    X["area"] = rng.choice(["centre", "suburb", "village"], n)
    log_price = (
        9.0 + 0.012 * X["size"] + 0.08 * X["rooms"] + X["area"].map({"centre": 0.5, "suburb": 0.1, "village": 0})
    )
    return X, pd.Series(np.exp(log_price + rng.normal(scale=0.35, size=n)), name="price")


def _reference(X: pd.DataFrame, y: pd.Series, Xt: pd.DataFrame) -> tuple[float, np.ndarray]:
    """(alpha, test predictions) of RidgeCV on log(y), exp(·) × the mean of exp(training residual) (Duan)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from threadpoolctl import threadpool_limits

    from roost.training.linear_fit import ALPHAS

    pre = ColumnTransformer(
        [("n", StandardScaler(), ["size", "rooms"]), ("c", OneHotEncoder(sparse_output=False), ["area"])]
    )
    A, At = pre.fit_transform(X), pre.transform(Xt)
    with threadpool_limits(1):
        r = RidgeCV(alphas=ALPHAS).fit(A, np.log(y))
    smear = np.mean(np.exp(np.log(y) - r.predict(A)))
    return float(r.alpha_), np.exp(r.predict(At)) * smear


def _split() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, np.ndarray]:
    X, y = _prices()
    return X.iloc[:N_TRAIN], y.iloc[:N_TRAIN], X.iloc[N_TRAIN:], y.iloc[N_TRAIN:].to_numpy()


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(p)) ** 2)))


def test_log_target_equals_ridge_on_log_labels_with_smearing() -> None:
    from roost.training.models import LogReg

    X, y, Xt, yt = _split()
    alpha, ref = _reference(X, y, Xt)
    m = LogReg(task="regression", target="log").fit(X, y)
    out = np.asarray(m.predict(Xt), dtype=np.float64)
    assert m.penalty_ == {"alpha": pytest.approx(alpha)}
    np.testing.assert_allclose(out, ref, rtol=2e-3)  # float32 weights, through exp
    # and it is the better model of such a label: the raw-label ridge misses the multiplicative effects
    raw = np.asarray(LogReg(task="regression").fit(X, y).predict(Xt), dtype=np.float64)
    assert _rmse(yt, out) < 0.97 * _rmse(yt, raw), (_rmse(yt, out), _rmse(yt, raw))


def test_the_package_predicts_what_the_model_does_and_never_overflows(tmp_path) -> None:
    from roost.modelpkg import load_model
    from roost.training.models import LogReg

    X, y, Xt, _ = _split()
    m = LogReg(task="regression", target="log").fit(X, y)
    pkg = m.save_package(tmp_path / "pkg", Xt.head(50), label="price")
    pred = load_model(pkg)
    np.testing.assert_allclose(pred.predict(Xt), m.predict(Xt), rtol=1e-5)
    far = Xt.head(3).assign(size=[1e6, -1e6, 1e9])  # far outside the training rows: the log prediction is clipped
    out = np.asarray(pred.predict(far), dtype=np.float64)
    assert np.all(np.isfinite(out)) and np.all(out > 0)
    assert out.max() <= np.exp(1.0) * y.max() * 1.5 and out.min() >= np.exp(-1.0) * y.min() * 0.5


def test_its_explanation_adds_up_to_the_log_prediction(tmp_path) -> None:
    from roost.responsible.attributions import explain
    from roost.training.models import LogReg

    X, y, Xt, _ = _split()
    pkg = LogReg(task="regression", target="log").fit(X, y).save_package(tmp_path / "pkg", Xt.head(50), label="p")
    e = explain(pkg, Xt, rows=30, method="linear")
    assert e.space == "log(prediction)"
    from roost.modelpkg import load_model

    out = np.log(np.asarray(load_model(pkg).predict(Xt.head(30)), dtype=np.float64))
    np.testing.assert_allclose(e.base + e.values.sum(axis=1), out, atol=1e-4)


def test_bad_labels_and_values_are_config_errors_naming_the_field() -> None:
    from roost.errors import ConfigError
    from roost.training.models import LogReg

    X, y, _, _ = _split()
    zero = y.copy()
    zero.iloc[5] = 0.0
    with pytest.raises(ConfigError, match=r"model\.params\.target: log needs a label above 0.*1 of 300"):
        LogReg(task="regression", target="log").fit(X, zero)
    with pytest.raises(ConfigError, match=r"model\.params\.target: log is for regression"):
        LogReg(task="binary", target="log").fit(X, (y > y.median()).astype(int))
    with pytest.raises(ConfigError, match=r"model\.params\.target: 'exp'"):
        LogReg(task="regression", target="exp").fit(X, y)
    neg_val = y.iloc[:50].copy()
    neg_val.iloc[0] = -3.0  # a validation label is checked too
    with pytest.raises(ConfigError, match="above 0"):
        LogReg(task="regression", target="log").fit(X, y, X.iloc[:50], neg_val)


def test_auto_trains_logreg_log_only_for_a_regression_label_above_zero() -> None:
    from roost.training.auto_candidates import DEFAULT_CANDIDATES, label_candidates, table_candidates

    reg = table_candidates(list(DEFAULT_CANDIDATES), 5_000, 9, task="regression")
    assert "logreg_log" in reg
    for task in ("binary", "multiclass"):
        assert "logreg_log" not in table_candidates(list(DEFAULT_CANDIDATES), 5_000, 9, task=task)
    assert label_candidates(reg, [1.0, 2.5, 3.0]) == reg
    for labels in ([0.0, 2.0], [-1.0, 2.0], [np.nan, 2.0]):
        assert label_candidates(reg, labels) == [c for c in reg if c != "logreg_log"], labels
    written = ["logreg", "logreg_log"]  # a list the user wrote stays as written (the fit then names the problem)
    assert label_candidates(written, [0.0, 1.0], default=False) == written


def test_auto_on_a_price_table_blends_the_log_model(ws, tmp_path) -> None:
    """End to end: roost train (model auto) on a multiplicative price table gives logreg_log weight, and a table
    with a zero label (among the test rows: the refit fits them too) trains without it."""
    import roost

    X, y = _prices(1, 700)
    df = X.assign(price=y)
    path = tmp_path / "prices.parquet"
    df.to_parquet(path)
    cfg = {"data": str(path), "label": "price", "task": "regression", "time_budget": "none"}
    res = roost.train({**cfg, "model": {"type": "auto"}}, progress=False)
    assert "logreg_log" in res.weights and res.weights["logreg_log"] > 0, res.weights
    # a zero among the test rows only: the refit on every row would fit the log model on it
    from roost.training.auto import prepare

    test_rows = prepare({**cfg, "model": {"type": "auto"}})[3][2].index
    df.loc[test_rows[0], "price"] = 0.0
    df.to_parquet(path)
    res = roost.train({**cfg, "model": {"type": "auto"}}, progress=False)
    assert "logreg_log" not in res.weights, res.weights
