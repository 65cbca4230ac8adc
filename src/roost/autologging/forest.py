"""A scikit-learn forest's predictions on its own fit data (what its training metrics need), made tree by tree while
the forest still fits: each tree is predicted on autolog's side thread the moment it is built (the user's fit runs
with n_jobs=1, so a core is often free meanwhile), and summed in tree order exactly as scikit-learn's n_jobs=1
`predict_proba`/`predict` sums them (zeros + tree 0 + tree 1 + …, then divided by the number of trees) — the same
bits, not the ~30 ms per 10k rows of a 50-tree predict after `fit` returns.

Used only where that equality is checked, else the forest's own method runs: a forest whose `predict_proba`
(classifier) or `predict` (regressor) is scikit-learn's, one output, dense data, trees built on the fit's thread (its
n_jobs=1; joblib's sequential backend), no warm start, a core likely free (two or more, the load below their
number); after the fit the trees must be the forest's `estimators_`, in order, and the data the trees were predicted
on must equal what the forest's own input check gives for the snapshot.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from roost.autologging import core

_local = threading.local()  # .collector: the TreePredictions of the forest fitting on this thread


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def spare_core() -> bool:
    """True where a core is likely free beside the fit: two cores or more, and the 1-minute load average below their
    number (on a busy machine the predictions would only take CPU from the fit, delaying its return as much as they
    save after it: measured by bench/_autolog_forest_ab.py)."""
    n = cores()
    if n < 2:
        return False
    try:
        return os.getloadavg()[0] < n
    except (AttributeError, OSError):  # no load average on this platform
        return True


BUILD = "_parallel_build_trees"  # scikit-learn's per-tree build function of forests (private: checked before use)


def build_patches() -> list[tuple[Any, str, Callable[[Any], Any]]]:
    """The patch of scikit-learn's per-tree forest build, or none where this scikit-learn has no such function or its
    forests no `_validate_X_predict` (a private API that may change: then forests are predicted after the fit)."""
    from sklearn.ensemble import _forest

    if not callable(getattr(_forest, BUILD, None)) or not hasattr(_forest.BaseForest, "_validate_X_predict"):
        return []
    return [(_forest, BUILD, wrap_build)]


def applies(est: Any) -> bool:
    """True for a forest whose predictions this module can make beside its fit (scikit-learn's own prediction
    method, one output, not warm-started), where a core is likely free for them (spare_core)."""
    from sklearn.ensemble._forest import ForestClassifier, ForestRegressor

    cls = type(est)
    if getattr(est, "warm_start", False) or not spare_core():
        return False
    if isinstance(est, ForestClassifier):
        return getattr(cls, "predict_proba", None) is ForestClassifier.predict_proba
    if isinstance(est, ForestRegressor):
        return getattr(cls, "predict", None) is ForestRegressor.predict
    return False


class TreePredictions:
    """The per-tree predictions of one forest fit on `data` (a snapshot of its fit data), summed in tree order."""

    def __init__(self, classifier: bool, data: Any) -> None:
        self.classifier = classifier
        self.data = data
        self.X: Any = None  # the snapshot as float32, what the trees are predicted on (made on the side thread)
        self.trees: list[Any] = []
        self.taken = 0  # trees handed to a thread so far (in order)
        self.summed = 0  # trees added to `total` so far (in order)
        self.total: Any = None
        self.early: dict[int, Any] = {}  # predictions that finished before an earlier tree's
        self.failed = False
        self.cond = threading.Condition()

    def add(self, tree: Any) -> None:
        """A tree the fit just built: predicted on the side thread."""
        with self.cond:
            if self.failed:
                return
            self.trees.append(tree)
        core.on_side_thread(self._work)  # _work never raises: a failure only turns the check off

    def _work(self) -> None:
        """Predict the trees not yet taken, in order (on whichever thread calls it); never raises: a failure turns
        the predictions off (the forest's own method runs after the fit instead, and raises what it raises)."""
        import numpy as np

        while True:
            with self.cond:
                if self.failed or self.taken >= len(self.trees):
                    return
                i = self.taken
                self.taken += 1
                tree = self.trees[i]
            try:
                with self.cond:  # made once, by the first thread here
                    if self.X is None:
                        self.X = _float32(self.data)
                predict = tree.predict_proba if self.classifier else tree.predict
                pred = predict(self.X, check_input=False)
                with self.cond:
                    self.early[i] = pred
                    while self.summed in self.early:  # in tree order: scikit-learn's n_jobs=1 order of additions
                        p = self.early.pop(self.summed)
                        if self.total is None:
                            self.total = np.zeros(p.shape, dtype=np.float64)
                        self.total += p
                        self.summed += 1
                    self.cond.notify_all()
            except Exception:  # noqa: BLE001 - see the docstring
                with self.cond:
                    self.failed = True
                    self.cond.notify_all()
                return

    def result(self, model: Any, X: Any) -> Any | None:
        """model.predict_proba(X) (classifier) / model.predict(X) (regressor), bit for bit, from the trees' predictions
        — None where that cannot be vouched for (then the caller asks the model)."""
        import numpy as np

        estimators = getattr(model, "estimators_", None)
        if self.failed or estimators is None or len(estimators) != len(self.trees) or not self.trees:
            return None
        if any(a is not b for a, b in zip(estimators, self.trees, strict=True)):
            return None
        checked = model._validate_X_predict(X)  # the forest's own input check (it raises what predict would raise)
        self._work()  # the trees the side thread has not reached yet, here
        with self.cond:
            while not self.failed and self.summed < len(self.trees):
                self.cond.wait()
            if self.failed or self.total is None:
                return None
            total = self.total
        Xp = self.X
        if not isinstance(checked, np.ndarray) or not isinstance(Xp, np.ndarray) or checked.shape != Xp.shape:
            return None
        if checked.dtype != Xp.dtype or not np.array_equal(checked, Xp, equal_nan=True):
            return None
        if self.classifier and (total.ndim != 2 or getattr(model, "n_outputs_", 1) != 1):
            return None
        if not self.classifier and (total.ndim != 1 or getattr(model, "n_outputs_", 1) != 1):
            return None
        return total / len(self.trees)


def _float32(data: Any) -> Any:
    """The dense fit data as the forest's input check makes it (float32 array); refused for sparse data."""
    import scipy.sparse
    from sklearn.utils.validation import check_array

    if scipy.sparse.issparse(data):
        raise TypeError("sparse data: predicted after the fit")
    return check_array(data, dtype="float32", ensure_all_finite=False)


@contextlib.contextmanager
def collecting(predictions: TreePredictions | None) -> Iterator[None]:
    """While the forest fits on this thread: each tree it builds goes to `predictions`."""
    before = getattr(_local, "collector", None)
    _local.collector = predictions
    try:
        yield
    finally:
        _local.collector = before


def wrap_build(original: Callable[..., Any]) -> Callable[..., Any]:
    """scikit-learn's per-tree build function of forests, handing each built tree to the collecting forest fit."""

    def build(*args: Any, **kwargs: Any) -> Any:
        tree = original(*args, **kwargs)
        collector = getattr(_local, "collector", None)
        if collector is not None:
            collector.add(tree)
        return tree

    return build
