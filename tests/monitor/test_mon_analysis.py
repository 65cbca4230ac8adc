"""Model analysis equals scikit-learn per slice (ROC-AUC, log loss, accuracy), calibration and confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, log_loss, roc_auc_score

from roost.errors import RoostError
from roost.monitor.analysis import analyze, join_labels, slice_groups


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 400), digits=st.sampled_from([1, 2, 6]))
def test_slice_metrics_equal_sklearn(seed: int, n: int, digits: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(n).round(digits)
    df = pd.DataFrame(
        {
            "y": (rng.random(n) < p).astype(int),
            "pred_probability": p,
            "g": pd.Series(rng.choice(["a", "b", "c"], n), dtype="str"),
            "x": rng.normal(size=n),
        }
    )
    an = analyze(df, "y", features=["g"])
    for row in an.slices["g"]:
        m = (df["g"] == row["slice"]).to_numpy()
        y, q = df.y[m].to_numpy(), p[m]
        assert row["count"] == m.sum() and row["label_mean"] == pytest.approx(y.mean())
        if len(np.unique(y)) == 2:
            assert row["roc_auc"] == pytest.approx(roc_auc_score(y, q), abs=1e-12)
        else:
            assert np.isnan(row["roc_auc"])
        assert row["log_loss"] == pytest.approx(log_loss(y, np.clip(q, 1e-15, 1 - 1e-15), labels=[0, 1]), rel=1e-9)
        assert row["accuracy"] == pytest.approx(np.mean((q >= 0.5) == (y == 1)))


def test_calibration_confusion_and_numeric_slices() -> None:
    rng = np.random.default_rng(0)
    n = 5000
    p = rng.random(n)
    df = pd.DataFrame(
        {
            "y": (rng.random(n) < p**1.3).astype(int),
            "pred_probability": p,
            "age": rng.integers(18, 80, n).astype(float),
            "city": rng.choice(list("abcdefghijklmn"), n),
        }
    )
    df.loc[::17, "age"] = np.nan
    an = analyze(df, "y", features=["age", "city"], bins=4)
    frac, mean = calibration_curve(df.y, p, n_bins=10, strategy="uniform")
    assert np.allclose([c["label_rate"] for c in an.calibration], frac)
    assert np.allclose([c["mean_score"] for c in an.calibration], mean)
    tn, fp, fn, tp = confusion_matrix(df.y, p >= 0.5).ravel()
    assert an.confusion == {"threshold": 0.5, "tn": tn, "fp": fp, "fn": fn, "tp": tp}
    ages = [r["slice"] for r in an.slices["age"]]
    assert len(ages) == 5 and ages[-1] == "(missing)" and sum(r["count"] for r in an.slices["age"]) == n
    cities = [r["slice"] for r in an.slices["city"]]
    assert len(cities) == 11 and cities[-1] == "(other)"
    assert an.to_dict()["overall"]["roc_auc"] == pytest.approx(roc_auc_score(df.y, p))


def test_regression_analysis_and_join() -> None:
    rng = np.random.default_rng(1)
    logs = pd.DataFrame(
        {
            "_request_id": np.repeat(np.arange(50), 2),
            "_row": np.tile([0, 1], 50),
            "x": rng.normal(size=100),
            "pred_prediction": rng.normal(size=100),
        }
    )
    labels = pd.DataFrame({"_request_id": np.arange(40), "_row": 0, "target": rng.normal(size=40)})
    joined = join_labels(logs, labels, ["_request_id", "_row"])
    assert len(joined) == 40
    an = analyze(joined, "target")
    assert an.task == "regression" and an.overall["rmse"] > 0 and an.slices["x"][0]["rmse"] > 0
    with pytest.raises(RoostError, match="join column"):
        join_labels(logs, labels, ["user_id"])
    with pytest.raises(RoostError, match="no score column"):
        analyze(labels, "target")


def test_slice_groups_of_a_bool_and_constant() -> None:
    g = slice_groups(pd.Series([True, False, True], name="b"))
    assert g.levels == [["True", "False"]] and g.codes.tolist() == [0, 1, 0]
    g = slice_groups(pd.Series([3.0, 3.0, 3.0], name="c"))
    assert g.levels == [["3.0"]]


def test_threshold_selecting_almost_nobody_warns_and_ids_are_not_slices(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(8)
    n = 2000
    y = (rng.random(n) < 0.08).astype(np.int64)  # 8 % base rate
    p = np.clip(0.04 + 0.25 * y + rng.normal(0, 0.05, n), 0, 1)  # well ranked, but every score < 0.5
    df = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "request": [f"req-{i}" for i in range(n)],
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="s"),
            "group": rng.choice(list("ab"), n),
            "clicked": y,
            "pred_probability": p,
        }
    )
    with caplog.at_level("WARNING", logger="roost.monitor.analysis"):
        an = analyze(df, "clicked")
    assert an.confusion["tp"] + an.confusion["fp"] == int((p >= 0.5).sum()) == 0
    assert any("almost no row" in m for m in an.notes) and any(
        "almost no row" in r.getMessage() for r in caplog.records
    )
    assert set(an.slices) == {"group"} and any("user_id (id)" in m for m in an.notes)
    ok = analyze(df, "clicked", threshold=float(np.quantile(p, 0.92)))
    assert not any("almost" in m for m in ok.notes)
    assert any("almost every row" in m for m in analyze(df, "clicked", threshold=0.0).notes)
    assert set(analyze(df, "clicked", features=["user_id"]).slices) == {"user_id"}  # named slices are kept
