"""Hostile inputs to group fairness metrics: NaN scores, labels whose text collides, no rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, selection_rate

from roost.errors import RoostError
from roost.responsible import group_metrics


def test_nan_scores_are_an_error_not_a_silent_negative() -> None:
    """scikit-learn's roc_auc_score refuses NaN scores; a NaN used to rank highest and predict 0 silently."""
    rng = np.random.default_rng(1)
    s = rng.random(60)
    s[[3, 10]] = np.nan
    with pytest.raises(RoostError, match="2 .*NaN"):
        group_metrics(pd.Series(rng.choice(["a", "b"], 60), name="g"), y_true=rng.integers(0, 2, 60), y_score=s)


def test_int_and_str_labels_with_same_text_stay_distinct_groups() -> None:
    """1 and '1' are two groups for fairlearn; their labels must not collide into one duplicated index entry."""
    g = pd.Series(np.array([1, "1", 2, "b"] * 25, dtype=object), name="g")
    yhat = np.tile([1, 1, 0, 0, 1, 0, 0, 0], 13)[:100]
    r = group_metrics(g, y_pred=yhat)
    df = r.by_group
    assert df.index.is_unique
    mf = MetricFrame(metrics=selection_rate, y_true=yhat, y_pred=yhat, sensitive_features=g)
    assert sorted(df["selection_rate"].tolist()) == pytest.approx(sorted(mf.by_group.tolist()))
    assert len(df) == len(mf.by_group)


def test_a_group_literally_named_missing_is_not_merged_with_missing_values() -> None:
    """A value '(missing)' and a None are different groups; both labels must be distinct."""
    g = pd.Series(["(missing)", None, "a", "a"] * 10, name="g")
    r = group_metrics(g, y_pred=np.tile([1, 0, 1, 0], 10))
    assert r.by_group.index.is_unique
    assert len(r.by_group) == 3


def test_no_rows_is_an_error() -> None:
    """An empty input has nothing to compare: say so instead of a report of empty tables."""
    with pytest.raises(RoostError, match="no rows"):
        group_metrics(pd.Series([], dtype=str, name="g"), y_true=np.array([], int), y_score=np.array([]))


def test_score_column_that_is_not_numeric_is_an_error() -> None:
    """A text score column escaped as ValueError from numpy."""
    from roost.responsible.api import fairness

    df = pd.DataFrame({"g": ["a", "b"] * 10, "y": [0, 1] * 10, "s": ["high", "low"] * 10})
    with pytest.raises(RoostError, match="'s'.*numbers"):
        fairness(df, sensitive="g", label="y", score="s")


@pytest.mark.parametrize("threshold", [float("nan"), float("inf")])
def test_threshold_must_be_finite(threshold: float) -> None:
    """A NaN threshold selected no row at all (score >= NaN is false) and reported rates of 0 for every group."""
    rng = np.random.default_rng(2)
    with pytest.raises(RoostError, match="threshold"):
        group_metrics(
            pd.Series(rng.choice(["a", "b"], 40), name="g"),
            y_true=rng.integers(0, 2, 40),
            y_score=rng.random(40),
            threshold=threshold,
        )


def test_pos_label_applies_to_labels_and_0_1_predictions_stay_0_1() -> None:
    """With string labels and pos_label='Yes', 0/1 predictions were compared to 'Yes' and all read as 0."""
    from sklearn.metrics import recall_score

    g = pd.Series(["a", "b"] * 10, name="g")
    y = np.array(["Yes", "No", "No", "Yes", "Yes"] * 4)
    yhat = np.array([1, 0, 1, 1, 0] * 4)
    r = group_metrics(g, y_true=y, y_pred=yhat, pos_label="Yes")
    for grp in ("a", "b"):
        m = (g == grp).to_numpy()
        assert r.by_group.loc[grp, "selection_rate"] == pytest.approx(yhat[m].mean())
        assert r.by_group.loc[grp, "tpr"] == pytest.approx(recall_score(y[m] == "Yes", yhat[m] == 1))


def test_pos_label_that_is_not_a_value_is_an_error() -> None:
    """pos_label='yes' on Yes/No labels made every row negative, silently."""
    g = pd.Series(["a", "b"] * 10, name="g")
    y = np.array(["Yes", "No"] * 10)
    with pytest.raises(RoostError, match="'yes'"):
        group_metrics(g, y_true=y, y_score=np.linspace(0, 1, 20), pos_label="yes")


def test_pos_label_zero_on_a_float_label() -> None:
    """--pos-label 0 on labels 0.0/1.0: '0' matched no text '0.0', so class 1.0 was taken as positive instead."""
    g = pd.Series(["a", "b"] * 10, name="g")
    y = np.array([0.0, 1.0, 0.0, 0.0] * 5)
    r = group_metrics(g, y_true=y, y_score=np.linspace(0, 1, 20), pos_label="0")
    assert r.by_group["positives"].sum() == (y == 0).sum()


def test_markdown_card_table_survives_group_labels_with_newlines_and_pipes() -> None:
    """A group label with a newline split its Markdown table row in two (pipes were already escaped)."""
    from roost.responsible.card import Card, card_markdown

    g = pd.Series(["north\nregion", "a|b"] * 20, name="region")
    rep = group_metrics(g, y_pred=np.tile([1, 0, 0, 1], 10))
    md = card_markdown(Card("m", sections={"Fairness": rep}))
    rows = [line for line in md.splitlines() if line.startswith("| ") and "region" not in line[:9]]
    body = [r for r in rows if not r.startswith("| group")]
    assert len(body) == 2 and all(r.rstrip().endswith("|") for r in body)
    assert any("north region" in r for r in body) and any("a\\|b" in r for r in body)


def test_sensitive_column_named_twice_is_an_error() -> None:
    """`--sensitive g --sensitive g` escaped as pandas' TypeError from factorize."""
    from roost.responsible.api import fairness

    df = pd.DataFrame({"g": ["a", "b"] * 10, "y": [0, 1] * 10, "s": np.linspace(0, 1, 20)})
    with pytest.raises(RoostError, match="'g'.*twice"):
        fairness(df, sensitive=["g", "g"], label="y", score="s")
