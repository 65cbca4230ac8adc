"""Group metrics equal fairlearn's MetricFrame exactly (hypothesis: empty, single-class and single groups)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.errors import RoostError
from roost.responsible.group_fairness import group_metrics

fl = pytest.importorskip("fairlearn.metrics")


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """roc_auc_score, NaN for one class (scikit-learn raises there)."""
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")


def _fairlearn(sf: pd.DataFrame, y: np.ndarray, p: np.ndarray, thr: float) -> tuple[pd.DataFrame, dict]:
    """fairlearn's by-group table and disparities for the same inputs."""
    from sklearn.metrics import precision_score

    yhat = (p >= thr).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = fl.MetricFrame(
            metrics={
                "count": fl.count,
                "selection_rate": fl.selection_rate,
                "tpr": fl.true_positive_rate,
                "fpr": fl.false_positive_rate,
                "precision": precision_score,
            },
            y_true=y,
            y_pred=yhat,
            sensitive_features=sf,
        )
        auc = fl.MetricFrame(metrics={"roc_auc": _auc}, y_true=y, y_pred=p, sensitive_features=sf)
        disp = {
            "demographic_parity_difference": fl.demographic_parity_difference(y, yhat, sensitive_features=sf),
            "demographic_parity_ratio": fl.demographic_parity_ratio(y, yhat, sensitive_features=sf),
            "equalized_odds_difference": fl.equalized_odds_difference(y, yhat, sensitive_features=sf),
            "equalized_odds_ratio": fl.equalized_odds_ratio(y, yhat, sensitive_features=sf),
        }
    return mf.by_group.join(auc.by_group), disp


@st.composite
def cases(draw: st.DrawFn) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, float]:
    """Random groups (1-3 columns, rare and one-class groups, empty intersections), labels and scores."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 300))
    k = draw(st.integers(1, 3))
    sf = pd.DataFrame(
        {
            f"s{j}": pd.Series(rng.choice([f"g{i}" for i in range(draw(st.integers(1, 4)))], n, p=None), dtype="str")
            for j in range(k)
        }
    )
    p = rng.random(n).round(draw(st.sampled_from([1, 2, 8])))
    y = (rng.random(n) < draw(st.sampled_from([0.0, 0.05, 0.5, 1.0]))).astype(int)
    if draw(st.booleans()) and n > 3:  # force one group to a single class
        y[sf.iloc[:, 0].to_numpy() == sf.iloc[0, 0]] = 1
    return sf, y, p, draw(st.sampled_from([0.3, 0.5]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_equal_to_fairlearn_metricframe(case) -> None:
    sf, y, p, thr = case
    rep = group_metrics(sf, y_true=y, y_score=p, threshold=thr)
    ref, disp = _fairlearn(sf, y, p, thr)
    mine = rep.by_group
    assert list(mine.index) == list(ref.index)
    counts = ref["count"].fillna(0)  # fairlearn leaves an empty intersection NaN; roost counts it as 0
    assert np.array_equal(mine["count"].to_numpy(), counts.to_numpy())
    for col in ("selection_rate", "tpr", "fpr", "precision", "roc_auc"):
        np.testing.assert_allclose(
            mine[col].to_numpy(float), ref[col].to_numpy(float), rtol=0, atol=1e-12, equal_nan=True, err_msg=col
        )
    got = rep.table().disparities()
    for key, want in disp.items():
        assert got[key] == pytest.approx(want, abs=1e-12, nan_ok=True), key


def test_single_columns_and_intersection_are_reported() -> None:
    rng = np.random.default_rng(0)
    sf = pd.DataFrame({"sex": rng.choice(["f", "m"], 500), "age": rng.choice(["young", "old"], 500)})
    y, p = rng.integers(0, 2, 500), rng.random(500)
    rep = group_metrics(sf, y_true=y, y_score=p)
    assert [t.columns for t in rep.tables] == [["sex"], ["age"], ["sex", "age"]]
    ref, disp = _fairlearn(sf[["sex"]], y, p, 0.5)
    np.testing.assert_allclose(rep.table("sex").frame()["tpr"], ref["tpr"], atol=1e-12)
    d = rep.to_dict()
    assert d["tables"][0]["disparities"]["demographic_parity_difference"] == pytest.approx(
        disp["demographic_parity_difference"]
    )


def test_missing_sensitive_values_form_their_own_group() -> None:
    sf = pd.DataFrame({"g": pd.Series(["a", None, "b", "a", None, "b"] * 20, dtype="str")})
    y = np.tile([1, 0, 1, 1, 0, 0], 20)
    p = np.linspace(0, 1, 120)
    rep = group_metrics(sf, y_true=y, y_score=p)
    ref, _ = _fairlearn(sf.fillna("(missing)"), y, p, 0.5)
    ref = ref.loc[rep.by_group.index]  # roost lists the missing group last
    np.testing.assert_allclose(
        rep.by_group[["selection_rate", "tpr", "fpr", "precision"]].to_numpy(float),
        ref[["selection_rate", "tpr", "fpr", "precision"]].to_numpy(float),
        atol=1e-12,
    )


def test_one_group_small_groups_and_no_label_are_warned() -> None:
    sf = pd.Series(["only"] * 10, name="g")
    rep = group_metrics(sf, y_true=np.ones(10, int), y_score=np.linspace(0, 1, 10))
    text = " ".join(rep.warnings)
    assert "only one group" in text and "only 10 rows" in text and "no negative labels" in text
    assert rep.table().disparities()["demographic_parity_difference"] == 0.0
    rep = group_metrics(sf, y_score=np.linspace(0, 1, 10))
    assert "no label given" in rep.warnings[0] and "tpr" not in rep.table().metrics


def test_string_labels_and_bad_input() -> None:
    sf = pd.Series(["a", "b"] * 50, name="g")
    y = np.array(["no", "yes"] * 50)
    rep = group_metrics(sf, y_true=y, y_score=np.tile([0.2, 0.9], 50))
    assert rep.by_group["tpr"].tolist() == [0.0, 1.0]
    rep2 = group_metrics(sf, y_true=y, y_score=np.tile([0.2, 0.9], 50), pos_label="no")
    assert rep2.by_group["positives"].tolist() == [50.0, 0.0]
    with pytest.raises(RoostError, match="binary label"):
        group_metrics(sf, y_true=np.arange(100) % 3, y_score=np.zeros(100))
    with pytest.raises(RoostError, match="different lengths"):
        group_metrics(sf, y_true=np.zeros(99, int), y_score=np.zeros(99))
