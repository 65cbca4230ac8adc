"""autolog's training metrics are scikit-learn's own metrics on the model's predictions of its fit data, computed
once per kind: each value equals what sklearn.metrics gives for it alone."""

import numpy as np
import pytest
from sklearn import metrics as m
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from roost.autologging.sklearn import training_metrics


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["forest", "logreg"])
def test_training_metrics_equal_sklearns_on_the_same_predictions(classes, weighted, kind):
    X, y = make_classification(n_samples=400, n_features=6, n_informative=4, n_classes=classes, random_state=1)
    labels = np.array(["cat", "dog", "eel"])[y]  # string labels: the classes_ order matters
    w = np.random.default_rng(0).uniform(0.1, 2.0, len(y)) if weighted else None
    est = RandomForestClassifier(n_estimators=8, max_depth=3, random_state=0) if kind == "forest" else (
        LogisticRegression(max_iter=400))  # fmt: skip
    est.fit(X, labels, sample_weight=w)
    got = training_metrics(est, X, labels, w)
    pred, proba = est.predict(X), est.predict_proba(X)
    want = {
        "training_accuracy_score": m.accuracy_score(labels, pred, sample_weight=w),
        "training_precision_score": m.precision_score(labels, pred, average="weighted", sample_weight=w),
        "training_recall_score": m.recall_score(labels, pred, average="weighted", sample_weight=w),
        "training_f1_score": m.f1_score(labels, pred, average="weighted", sample_weight=w),
        "training_log_loss": m.log_loss(labels, proba, labels=est.classes_, sample_weight=w),
        "training_roc_auc": m.roc_auc_score(labels, proba[:, 1], sample_weight=w)
        if classes == 2
        else m.roc_auc_score(labels, proba, multi_class="ovr", average="weighted", sample_weight=w),
        "training_score": est.score(X, labels, sample_weight=w),
    }
    assert got == pytest.approx(want, rel=0, abs=0)  # the same numbers, bit for bit
