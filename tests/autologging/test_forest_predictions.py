"""A forest's training predictions on two threads (roost.autologging.forest) are its own `predict_proba` /
`predict`, bit for bit, and are used only where that holds: otherwise the forest's method runs."""

import threading
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)

import roost
from roost.autologging import forest


@pytest.fixture(autouse=True)
def two_cores(monkeypatch):
    """Whatever this machine has: the two-thread path needs two cores (one core is tested on its own)."""
    monkeypatch.setattr(forest, "usable_cores", lambda: 2)


def _same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_classifier_probabilities_are_the_forests_bit_for_bit(classes, kind):
    X, y = make_classification(n_samples=1500, n_features=9, n_informative=5, n_classes=classes, random_state=classes)
    labels = np.array(["ant", "bee", "cat", "dog", "eel"])[y]
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    est = kind(n_estimators=23, max_depth=7, max_samples=0.7 if kind is RandomForestClassifier else None,
               bootstrap=kind is RandomForestClassifier, random_state=0, n_jobs=1)  # fmt: skip
    est.fit(X, labels, sample_weight=w)
    got = forest.training_predictions(est, X, "predict_proba")
    assert got is not None and _same_bits(got, est.predict_proba(X))
    assert forest.training_predictions(est, X, "predict") is None  # a classifier's predict is not a tree sum


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressor_predictions_are_the_forests_bit_for_bit(kind):
    X, y = make_regression(n_samples=1200, n_features=8, noise=3.0, random_state=4)
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(8)])
    est = kind(n_estimators=31, max_depth=9, random_state=1).fit(frame, y)  # n_jobs None, feature names
    got = forest.training_predictions(est, frame, "predict")
    assert got is not None and _same_bits(got, est.predict(frame))


def test_the_order_of_the_sum_matters_so_the_check_can_fail():
    """The same per-tree predictions summed in another order are not the forest's bits: the equality above tests
    the order (a version that summed as the trees finish on two threads would fail it)."""
    X, y = make_classification(n_samples=2000, n_features=10, n_informative=6, n_classes=3, random_state=0)
    est = RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0, n_jobs=1).fit(X, y)
    X32 = X.astype(np.float32)
    per_tree = [t.predict_proba(X32, check_input=False) for t in est.estimators_]
    backwards = np.zeros_like(per_tree[0])
    for p in reversed(per_tree):
        backwards += p
    backwards /= len(per_tree)
    ref = est.predict_proba(X)
    assert np.allclose(backwards, ref) and not _same_bits(backwards, ref)


class _Tree:
    """A stand-in tree whose prediction is a constant; the first one is slow."""

    def __init__(self, value: float, delay: float) -> None:
        self.value, self.delay = value, delay
        self.thread = ""

    def predict(self, X, check_input=True):
        time.sleep(self.delay)
        self.thread = threading.current_thread().name
        return np.full(len(X), self.value)


def test_predictions_that_finish_out_of_order_are_still_summed_in_tree_order():
    """Tree 0 is slow on one thread while the other predicts trees 1 and 2: the sum still adds tree 0 first. The
    values make the order visible: (1 + 1e16) - 1e16 = 0 in float64, (1e16 - 1e16) + 1 = 1."""
    trees = [_Tree(1.0, 0.3), _Tree(1e16, 0.0), _Tree(-1e16, 0.0)]
    job = forest._OrderedSum(trees, "predict", np.zeros((4, 1), dtype=np.float32))
    threads = [threading.Thread(target=job.work, name=f"t{i}") for i in range(2)]  # as the worker and side thread
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert job.added == 3 and job.total.tolist() == [0.0] * 4
    assert trees[0].thread != trees[1].thread  # tree 1 was predicted while tree 0 still slept


def test_a_busy_side_thread_leaves_the_trees_to_the_caller():
    """The side thread is busy (saving a model, in autolog): the caller predicts every tree alone and does not wait
    for it; the side thread later finds nothing left."""
    from roost.autologging import core

    release = threading.Event()
    core.on_side_thread(lambda: release.wait(30))
    try:
        trees = [_Tree(float(i), 0.0) for i in range(5)]
        job = forest._OrderedSum(trees, "predict", np.zeros((3, 1), dtype=np.float32))
        assert job.run() and job.total.tolist() == [10.0] * 3
        assert {t.thread for t in trees} == {threading.current_thread().name}
    finally:
        release.set()


def test_a_failing_tree_falls_back_to_the_forests_method():
    class Broken(_Tree):
        def predict(self, X, check_input=True):
            raise MemoryError("no room")

    job = forest._OrderedSum([_Tree(1.0, 0.0), Broken(2.0, 0.0), _Tree(3.0, 0.0)], "predict", np.zeros((2, 1)))
    assert not job.run()


def test_what_cannot_be_vouched_for_falls_back(monkeypatch):
    X, y = make_classification(n_samples=600, n_features=6, random_state=2)
    est = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(X, y)
    assert forest.training_predictions(est, X, "predict_proba") is not None
    Xn = X.copy()
    Xn[3, 1] = np.nan  # missing values: the forest's own check decides what they mean
    assert forest.training_predictions(est, Xn, "predict_proba") is None
    assert forest.training_predictions(est, scipy.sparse.csr_matrix(X), "predict_proba") is None
    assert forest.training_predictions(est, X[:, :5], "predict_proba") is None  # the forest raises its own error
    frame = pd.DataFrame(X, columns=list("abcdef"))
    assert forest.training_predictions(est, frame, "predict_proba") is None  # names now, none at fit: it warns
    named = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y)
    assert forest.training_predictions(named, frame[list("bacdef")], "predict_proba") is None
    assert forest.training_predictions(named, X, "predict_proba") is None
    parallel = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=2).fit(X, y)
    assert forest.training_predictions(parallel, X, "predict_proba") is None  # the forest predicts in parallel itself

    class Mine(RandomForestClassifier):
        def predict_proba(self, X):
            return super().predict_proba(X) * 0 + 0.5

    assert forest.training_predictions(Mine(n_estimators=3).fit(X, y), X, "predict_proba") is None
    boosted = GradientBoostingClassifier(n_estimators=3).fit(X, y)
    assert forest.training_predictions(boosted, X, "predict_proba") is None
    monkeypatch.setattr(forest, "usable_cores", lambda: 1)
    assert forest.training_predictions(est, X, "predict_proba") is None  # one core: nothing to gain


def test_autolog_uses_them_and_records_the_forests_metrics(rec, monkeypatch):
    from sklearn import metrics as m

    used = []
    real = forest.training_predictions

    def spy(model, X, method, started=None):
        out = real(model, X, method, started)
        used.append((method, out is not None, started is not None))
        return out

    monkeypatch.setattr(forest, "training_predictions", spy)
    X, y = make_classification(n_samples=800, n_features=7, n_informative=4, n_classes=3, random_state=6)
    roost.sklearn.autolog(silent=True)
    est = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0, n_jobs=1).fit(X, y)
    metrics = rec.only_run()["metrics"]
    roost.sklearn.autolog(disable=True)
    assert used == [("predict_proba", True, True)]  # begun when fit returned, finished by the training metrics
    proba = est.predict_proba(X)
    assert metrics["training_log_loss"] == m.log_loss(y, proba)
    assert metrics["training_roc_auc"] == m.roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    assert metrics["training_accuracy_score"] == est.score(X, y)


def test_a_regressor_under_autolog_records_the_forests_r2(rec):
    from sklearn import metrics as m

    X, y = make_regression(n_samples=700, n_features=5, noise=5.0, random_state=7)
    roost.sklearn.autolog(silent=True)
    est = RandomForestRegressor(n_estimators=9, random_state=0, n_jobs=1).fit(X, y)
    metrics = rec.only_run()["metrics"]
    roost.sklearn.autolog(disable=True)
    pred = est.predict(X)
    assert metrics["training_r2_score"] == m.r2_score(y, pred)
    assert metrics["training_mean_squared_error"] == m.mean_squared_error(y, pred)


def test_the_side_thread_takes_trees_before_the_model_save(rec, monkeypatch):
    """The forest's trees are queued on the side thread when `fit` returns, ahead of the model's save: the side
    thread predicts while the worker is still on its way, and saves the model after (the save first left the worker
    alone on the trees for the save's duration)."""
    from roost.autologging import core

    queued = []
    real = core.on_side_thread

    def spy(fn):
        owner = getattr(fn, "__self__", None)
        queued.append("trees" if isinstance(owner, forest._OrderedSum) else "steps")
        return real(fn)

    monkeypatch.setattr(core, "on_side_thread", spy)
    X, y = make_classification(n_samples=600, n_features=6, random_state=2)
    roost.sklearn.autolog(silent=True)
    est = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0, n_jobs=1).fit(X, y)
    metrics = rec.only_run()["metrics"]
    roost.sklearn.autolog(disable=True)
    assert queued[:2] == ["trees", "steps"], queued  # the trees first, then the model's save
    assert "trees" not in queued[2:], queued  # the training metrics finished the started job: none begun again
    from sklearn.metrics import log_loss

    assert metrics["training_log_loss"] == log_loss(y, est.predict_proba(X))
