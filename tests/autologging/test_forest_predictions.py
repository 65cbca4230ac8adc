"""A forest's training predictions made tree by tree while it fits (roost.autologging.forest) are its own
`predict_proba` / `predict`, bit for bit, and are used only where that holds: otherwise the forest's method runs."""

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    _forest,
)

import roost
from roost.autologging import forest
from roost.autologging.sklearn import training_metrics


@pytest.fixture
def build_patched(monkeypatch):
    """scikit-learn's per-tree build function handing trees to the collecting fit, as autolog patches it."""
    monkeypatch.setattr(_forest, "_parallel_build_trees", forest.wrap_build(_forest._parallel_build_trees))


def _collected_fit(est, X, y, data=None, **fit_kw):
    """Fit `est` with its trees predicted on `data` (X) as they are built; the collector."""
    trees = forest.TreePredictions(hasattr(est, "predict_proba"), X if data is None else data)
    with forest.collecting(trees):
        est.fit(X, y, **fit_kw)
    return trees


def _same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_classifier_probabilities_are_the_forests_bit_for_bit(build_patched, classes, kind):
    X, y = make_classification(n_samples=1500, n_features=9, n_informative=5, n_classes=classes, random_state=classes)
    labels = np.array(["ant", "bee", "cat", "dog", "eel"])[y]
    X[::17, 2] = np.nan  # missing values: the trees route them
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    est = kind(n_estimators=23, max_depth=7, max_samples=0.7 if kind is RandomForestClassifier else None,
               bootstrap=kind is RandomForestClassifier, random_state=0, n_jobs=1)  # fmt: skip
    trees = _collected_fit(est, X, labels, sample_weight=w)
    got = trees.result(est, X)
    assert got is not None and _same_bits(got, est.predict_proba(X))


@pytest.mark.parametrize("kind", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressor_predictions_are_the_forests_bit_for_bit(build_patched, kind):
    X, y = make_regression(n_samples=1200, n_features=8, noise=3.0, random_state=4)
    est = kind(n_estimators=31, max_depth=9, random_state=1, n_jobs=1)
    trees = _collected_fit(est, X.astype(np.float32), y)  # float32 data: the trees read it without a copy
    got = trees.result(est, X.astype(np.float32))
    assert got is not None and _same_bits(got, est.predict(X.astype(np.float32)))


def test_the_order_of_the_sum_matters_so_the_check_can_fail(build_patched):
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


def test_other_data_than_the_fits_is_not_vouched_for(build_patched):
    X, y = make_classification(n_samples=600, n_features=6, random_state=2)
    est = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1)
    trees = _collected_fit(est, X, y, data=X + 1.0)  # predicted on other rows than the metrics' data
    assert trees.result(est, X) is None
    assert training_metrics(est, X, y, None, trees)["training_accuracy_score"] == est.score(X, y)


def test_trees_built_on_other_threads_or_warm_started_fall_back(build_patched):
    X, y = make_classification(n_samples=600, n_features=6, random_state=3)
    est = RandomForestClassifier(n_estimators=6, random_state=0, n_jobs=2)  # trees built on joblib's threads
    trees = _collected_fit(est, X, y)
    assert not trees.trees and trees.result(est, X) is None
    warm = RandomForestClassifier(n_estimators=4, warm_start=True, random_state=0, n_jobs=1).fit(X, y)
    warm.n_estimators = 8
    assert not forest.applies(warm)
    trees = _collected_fit(warm, X, y)  # had it been used: 4 new trees, 8 in the forest
    assert trees.result(warm, X) is None


def test_sparse_data_falls_back(build_patched):
    X, y = make_classification(n_samples=500, n_features=6, random_state=5)
    Xs = scipy.sparse.csr_matrix(np.where(np.abs(X) > 1, X, 0.0))
    est = RandomForestClassifier(n_estimators=4, random_state=0, n_jobs=1)
    trees = _collected_fit(est, Xs, y)
    assert trees.result(est, Xs) is None


def test_autolog_uses_them_and_records_the_forests_metrics(rec, monkeypatch):
    from sklearn import metrics as m

    used = []
    real = forest.TreePredictions.result

    def spy(self, model, X):
        out = real(self, model, X)
        used.append(out is not None)
        return out

    monkeypatch.setattr(forest.TreePredictions, "result", spy)
    monkeypatch.setattr(forest, "spare_core", lambda: True)  # whatever the machine's load now
    X, y = make_classification(n_samples=800, n_features=7, n_informative=4, n_classes=3, random_state=6)
    roost.sklearn.autolog(silent=True)
    est = RandomForestClassifier(n_estimators=12, max_depth=6, random_state=0, n_jobs=1).fit(X, y)
    metrics = rec.only_run()["metrics"]
    assert used == [True]
    roost.sklearn.autolog(disable=True)
    proba = est.predict_proba(X)
    assert metrics["training_log_loss"] == m.log_loss(y, proba)
    assert metrics["training_roc_auc"] == m.roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    assert metrics["training_accuracy_score"] == est.score(X, y)
    assert _forest._parallel_build_trees.__name__ == "_parallel_build_trees"
    assert not hasattr(_forest._parallel_build_trees, "__roost_autolog__")  # disable gave the original back


def test_a_regressor_under_autolog_records_the_forests_r2(rec, monkeypatch):
    from sklearn import metrics as m

    monkeypatch.setattr(forest, "spare_core", lambda: True)

    X, y = make_regression(n_samples=700, n_features=5, noise=5.0, random_state=7)
    roost.sklearn.autolog(silent=True)
    est = RandomForestRegressor(n_estimators=9, random_state=0, n_jobs=1).fit(X, y)
    metrics = rec.only_run()["metrics"]
    roost.sklearn.autolog(disable=True)
    pred = est.predict(X)
    assert metrics["training_r2_score"] == m.r2_score(y, pred)
    assert metrics["training_mean_squared_error"] == m.mean_squared_error(y, pred)


def test_predictions_that_finish_out_of_order_are_still_summed_in_tree_order():
    """The side thread is slow on the first tree while `result()` predicts the others on its own thread: the sum
    still adds tree 0 first (a version adding them as they finish fails here)."""
    import threading
    import time

    X, y = make_classification(n_samples=2000, n_features=10, n_informative=6, n_classes=3, random_state=0)
    est = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0, n_jobs=1).fit(X, y)
    want = est.predict_proba(X)
    release = threading.Event()

    class Held:
        """Tree 0, whose prediction waits until the other trees are done."""

        def __init__(self, tree):
            self.tree = tree

        def __getattr__(self, name):
            return getattr(self.tree, name)

        def predict_proba(self, X, check_input=True):
            release.wait(10)
            return self.tree.predict_proba(X, check_input=check_input)

    trees = forest.TreePredictions(True, X)
    est.estimators_ = [Held(est.estimators_[0]), *est.estimators_[1:]]
    trees.add(est.estimators_[0])  # taken by the side thread, which now waits
    deadline = time.monotonic() + 10
    while trees.taken < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    for tree in est.estimators_[1:]:
        with trees.cond:
            trees.trees.append(tree)  # not handed to the side thread: result() predicts them
    threading.Timer(0.3, release.set).start()  # after result() has predicted trees 1..29
    got = trees.result(est, X)
    assert got is not None and _same_bits(got, want)


def test_one_core_or_a_busy_machine_predicts_after_the_fit(monkeypatch):
    """On one core, or with every core busy, the trees' predictions beside the fit would only delay its return."""
    est = RandomForestClassifier(n_estimators=3, n_jobs=1)
    monkeypatch.setattr(forest, "cores", lambda: 2)
    monkeypatch.setattr(forest.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert forest.applies(est)
    monkeypatch.setattr(forest.os, "getloadavg", lambda: (2.5, 0.5, 0.5))
    assert not forest.applies(est)
    monkeypatch.setattr(forest, "cores", lambda: 1)
    monkeypatch.setattr(forest.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert not forest.applies(est)


@pytest.mark.parametrize(
    "owner, name", [(_forest, "_parallel_build_trees"), (_forest.BaseForest, "_validate_X_predict")]
)
def test_a_scikit_learn_without_the_private_hooks_still_autologs(rec, monkeypatch, owner, name):
    """The per-tree patch rests on two private names of scikit-learn: where either is gone, autolog patches only the
    public `fit` methods (forests are then predicted after the fit) instead of failing to switch on."""
    from sklearn import metrics as m
    from sklearn.linear_model import LogisticRegression

    assert forest.build_patches()  # this scikit-learn has both
    monkeypatch.delattr(owner, name)
    assert forest.build_patches() == []
    X, y = make_classification(n_samples=300, n_features=5, random_state=3)
    roost.sklearn.autolog(silent=True)
    est = LogisticRegression().fit(X, y)
    metrics = rec.only_run()["metrics"]
    roost.sklearn.autolog(disable=True)
    assert metrics["training_log_loss"] == m.log_loss(y, est.predict_proba(X))
