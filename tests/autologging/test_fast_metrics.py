"""The training metrics autolog computes in one numpy pass are scikit-learn's own values, bit for bit: compared with
sklearn.metrics on random labels, predictions and probabilities (binary, multiclass, string labels, tied scores,
classes missing from y, float and integer sample weights with zeros), and the cases it does not cover go to
scikit-learn."""

import numpy as np
import pytest
from sklearn import metrics as m

from roost.autologging.classification_metrics import fast_classification_metrics


def _reference(classes, y, pred, proba, sw):
    p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted", sample_weight=sw)
    out = {
        "training_accuracy_score": m.accuracy_score(y, pred, sample_weight=sw),
        "training_precision_score": p,
        "training_recall_score": r,
        "training_f1_score": f,
    }
    if proba is not None:
        out["training_log_loss"] = m.log_loss(y, proba, labels=classes, sample_weight=sw)
        if len(classes) == 2:
            out["training_roc_auc"] = m.roc_auc_score(y, proba[:, 1], sample_weight=sw)
        else:
            out["training_roc_auc"] = m.roc_auc_score(
                y, proba, multi_class="ovr", average="weighted", labels=classes, sample_weight=sw
            )
    return {k: float(v) for k, v in out.items()}


def _case(rng, n, k, labels, weights, ties, absent, predict):
    classes = np.sort(np.asarray(labels[:k]))
    present = classes[:-1] if absent else classes
    y = rng.choice(present, size=n)
    raw = rng.random((n, k))
    if ties:  # a forest's probabilities: few distinct values, many tied scores
        raw = np.round(raw * 4) + 0.5
    proba = raw / raw.sum(axis=1, keepdims=True)
    if ties:  # and certain rows (0 and 1 exactly, as a pure leaf gives): the log loss clips them
        proba[::7] = np.eye(k)[rng.integers(0, k, size=len(proba[::7]))]
    if predict == "argmax":
        pred = classes[np.argmax(proba, axis=1)]
    else:  # a predict that is not the argmax (a decision threshold, another model)
        pred = rng.choice(classes, size=n)
    sw = None
    if weights == "float":
        sw = rng.random(n) * 3
        sw[rng.random(n) < 0.1] = 0.0
    elif weights == "int":
        sw = rng.integers(0, 4, size=n)
    return classes, y, pred, proba, sw


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("weights", [None, "float", "int"])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("predict", ["argmax", "other"])
def test_values_are_scikit_learns_bit_for_bit(k, weights, ties, predict):
    rng = np.random.default_rng([k, [None, "float", "int"].index(weights), ties, predict == "argmax"])
    for n, labels, absent in ((400, [0, 1, 2, 3, 4], False), (997, ["cat", "dog", "eel", "fox", "gnu"], False),
                              (300, [-2, 7, 11, 40, 41], k > 2)):  # fmt: skip
        classes, y, pred, proba, sw = _case(rng, n, k, labels, weights, ties, absent, predict)
        got = fast_classification_metrics(classes, y, pred, proba, sw)
        want = _reference(classes, y, pred, proba, sw)
        assert got is not None
        assert got == want, {key: (got[key], want[key]) for key in want if got[key] != want[key]}


def test_without_probabilities_only_the_label_metrics():
    rng = np.random.default_rng(5)
    classes, y, pred, _proba, sw = _case(rng, 500, 3, [0, 1, 2], "float", False, False, "other")
    got = fast_classification_metrics(classes, y, pred, None, sw)
    assert got == _reference(classes, y, pred, None, sw)


def test_one_class_in_y_gives_scikit_learns_nan_auc():
    y = np.zeros(50, dtype=int)
    proba = np.tile([0.7, 0.3], (50, 1))
    got = fast_classification_metrics(np.array([0, 1]), y, y, proba)
    with pytest.warns(m._ranking.UndefinedMetricWarning):
        want = m.roc_auc_score(y, proba[:, 1])
    assert np.isnan(got["training_roc_auc"]) and np.isnan(want)
    assert got["training_log_loss"] == m.log_loss(y, proba, labels=[0, 1])


@pytest.mark.parametrize(
    "bad",
    [
        "label outside classes",
        "unsorted classes",
        "2-D y",
        "float32 proba",
        "rows not summing to one",
        "float32 weights",
        "every weight on one class",
    ],
)
def test_cases_it_does_not_cover_go_to_scikit_learn(bad):
    rng = np.random.default_rng(1)
    classes, y, pred, proba, sw = _case(rng, 200, 3, [0, 1, 2], None, False, False, "argmax")
    if bad == "label outside classes":
        y = y.copy()
        y[0] = 9
    elif bad == "unsorted classes":
        classes = classes[::-1].copy()
    elif bad == "2-D y":
        y = y.reshape(-1, 1)
    elif bad == "float32 proba":
        proba = proba.astype(np.float32)
    elif bad == "rows not summing to one":
        proba = proba * 0.5
    elif bad == "float32 weights":
        sw = np.ones(len(y), dtype=np.float32)
    elif bad == "every weight on one class":
        classes, y, pred, proba, _ = _case(rng, 200, 2, [0, 1], None, False, False, "argmax")
        sw = (y == 1).astype(float)
    assert fast_classification_metrics(classes, y, pred, proba, sw) is None
