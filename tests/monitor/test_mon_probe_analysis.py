"""Silent-wrong-answer probes of profiles, analysis, drift rules and reports, each against a reference computed here
(numpy, pandas, scikit-learn or brute force), not against roost's own output."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from roost.errors import RoostError
from roost.monitor.analysis import analyze

# -- analysis ---------------------------------------------------------------------------------------------------------


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.integers(0, 2, n), "pred_probability": rng.random(n), "num": rng.normal(size=n)})


def test_slices_of_a_feature_with_infinities_are_bins_of_its_finite_values() -> None:
    df = _frame()
    x = df["num"].to_numpy().copy()
    x[:60], x[60:100] = -np.inf, np.inf
    df["num"] = x
    rows = analyze(df, "y", features=["num"]).slices["num"]
    fin = x[np.isfinite(x)]
    edges = np.quantile(fin, [0.2, 0.4, 0.6, 0.8])
    ref = np.searchsorted(edges, x, side="right")  # -inf in the first bin, +inf in the last
    assert [r["count"] for r in rows] == np.bincount(ref, minlength=5).tolist()
    assert not any("nan" in r["slice"] or "inf" in r["slice"] for r in rows), [r["slice"] for r in rows]
    for r, k in zip(rows, range(5)):
        m = ref == k
        y, p = df["y"].to_numpy()[m], df["pred_probability"].to_numpy()[m]
        assert r["roc_auc"] == pytest.approx(roc_auc_score(y, p))
        assert r["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]))


def test_slices_one_class_empty_and_missing_keys() -> None:
    df = _frame()
    df["cat"] = np.where(np.arange(len(df)) % 3 == 0, "a", np.where(np.arange(len(df)) % 3 == 1, None, "b"))
    df.loc[df["cat"] == "a", "y"] = 1
    rows = {r["slice"]: r for r in analyze(df, "y", features=["cat"]).slices["cat"]}
    assert np.isnan(rows["a"]["roc_auc"])
    keys = df["cat"].fillna("(missing)")
    for k, r in rows.items():
        g = df[keys == k]
        assert r["count"] == len(g) and r["label_mean"] == pytest.approx(g["y"].mean())
        if g["y"].nunique() == 2:
            assert r["roc_auc"] == pytest.approx(roc_auc_score(g["y"], g["pred_probability"]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"y": ["yes", "no"] * 150}, "label column 'y'"),
        ({"pred_probability": ["x"] * 300}, "score column 'pred_probability'"),
    ],
)
def test_non_numeric_label_or_score_is_a_clear_error(change: dict[str, list[str]], match: str) -> None:
    with pytest.raises(RoostError, match=match):
        analyze(_frame().assign(**change), "y", features=[])


def test_infinite_scores_are_refused() -> None:
    df = _frame()
    df.loc[3, "pred_probability"] = np.inf
    with pytest.raises(RoostError, match="infinite"):
        analyze(df, "y", features=[])


@pytest.mark.parametrize("thr", [float("nan"), float("inf")])
def test_non_finite_analysis_threshold_is_refused(thr: float) -> None:
    with pytest.raises(RoostError, match="threshold"):
        analyze(_frame(), "y", features=[], threshold=thr)


def test_slices_of_a_mixed_type_column_group_by_text() -> None:
    df = _frame(12)
    df["m"] = pd.Series([1, "1", 1.0, True, "a", None] * 2, dtype=object)
    rows = {r["slice"]: r["count"] for r in analyze(df, "y", features=["m"]).slices["m"]}
    ref = Counter("(missing)" if v is None else str(v) for v in df["m"])
    assert rows == dict(ref)


def test_overall_accuracy_is_at_the_analysis_threshold() -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix

    df = _frame(500, seed=3)
    an = analyze(df, "y", features=["num"], threshold=0.3)
    yhat = df["pred_probability"] >= 0.3
    assert an.overall["accuracy"] == pytest.approx(accuracy_score(df["y"], yhat))  # was at 0.5
    tn, fp, fn, tp = confusion_matrix(df["y"], yhat).ravel()
    assert (an.confusion["tn"], an.confusion["fp"], an.confusion["fn"], an.confusion["tp"]) == (tn, fp, fn, tp)
    rows = an.slices["num"]
    assert sum(r["accuracy"] * r["count"] for r in rows) / len(df) == pytest.approx(an.overall["accuracy"])


@pytest.mark.parametrize("bins", [0, 1, -2])
def test_fewer_than_two_bins_is_refused(bins: int) -> None:
    with pytest.raises(RoostError, match="bins"):
        analyze(_frame(), "y", features=["num"], bins=bins)
