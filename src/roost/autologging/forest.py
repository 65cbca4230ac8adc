"""A scikit-learn forest's predictions on its fit data (what its training metrics need) on two cores, bit for bit
its own `predict_proba` (classifier) / `predict` (regressor) with n_jobs=1.

scikit-learn's n_jobs=1 method predicts tree after tree on one thread and adds each prediction to a float64 total in
tree order (zeros + tree 0 + tree 1 + ..., then divided by the number of trees). A tree's traversal releases the GIL,
so here two threads take the trees in turn (the next one not yet taken) while the additions stay in tree order:
the caller's and autolog's one side thread (core.on_side_thread: no thread started per fit), which joins in once it
has saved the model. The same bits, sooner than the ~30 ms per 10k rows of a 50-tree forest on one thread that
autolog waits for before the run is complete. A finished prediction waits (at most a few: the threads take
consecutive trees) until the trees before it are added, so memory stays a few predictions, not one per tree.

The side thread starts as `fit` returns (start(), from autolog's `after`), so it takes trees before the model's
save is queued behind them; the worker joins in when it reaches the training metrics.

Used only where the equality holds, else the forest's own method runs (and raises or warns what it would): a forest
whose prediction method is scikit-learn's own, one output, not run in parallel by the forest itself (n_jobs None
or 1), dense finite data with the features the forest was fitted on (the same names, or none on both sides), two
cores or more for this process.
"""

from __future__ import annotations

import threading
from typing import Any

from roost.autologging import core
from roost.machine import usable_cores


def _tree_method(model: Any) -> str | None:
    """'predict_proba' (classifier) or 'predict' (regressor) where the forest's own method is scikit-learn's sum over
    its trees with one output; None for every other estimator."""
    if not type(model).__module__.startswith("sklearn.ensemble"):  # not even a subclass: no import of the ensembles
        return None
    from sklearn.ensemble import BaseEnsemble
    from sklearn.ensemble._forest import ForestClassifier, ForestRegressor

    if not isinstance(model, BaseEnsemble) or getattr(model, "n_outputs_", None) != 1:
        return None
    if getattr(model, "n_jobs", None) not in (None, 1) or not getattr(model, "estimators_", None):
        return None
    cls = type(model)
    if isinstance(model, ForestClassifier) and getattr(cls, "predict_proba", None) is ForestClassifier.predict_proba:
        return "predict_proba"
    if isinstance(model, ForestRegressor) and getattr(cls, "predict", None) is ForestRegressor.predict:
        return "predict"
    return None


def _checked_data(model: Any, X: Any) -> Any | None:
    """X as the forest's input check makes it (a float32 array) where that check would pass without a warning:
    dense, finite, the fitted number of features and the same feature names (or none on both sides); else None."""
    import numpy as np
    import scipy.sparse
    from sklearn.utils.validation import check_array

    if scipy.sparse.issparse(X):
        return None
    names = getattr(model, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if (names is None) != (columns is None):
        return None
    if names is not None and columns is not None and [str(c) for c in columns] != [str(n) for n in names]:
        return None
    try:
        data = check_array(X, dtype=np.float32, ensure_all_finite=False)
    except (TypeError, ValueError):
        return None
    if data.ndim != 2 or data.shape[1] != getattr(model, "n_features_in_", -1) or not np.isfinite(data).all():
        return None
    return data


class _OrderedSum:
    """Per-tree predictions made on two threads, added to one total in tree order."""

    def __init__(self, trees: list[Any], method: str, data: Any) -> None:
        self.trees, self.method, self.data = trees, method, data
        self.taken = 0  # trees handed to a thread so far (in order)
        self.added = 0  # trees added to the total so far (in order)
        self.total: Any = None
        self.ready: dict[int, Any] = {}  # predictions waiting for an earlier tree's
        self.failed = False
        self.cond = threading.Condition()

    def run(self) -> bool:
        """Every tree, on this thread and autolog's side thread once that is free (it may be saving the model: then
        this thread goes on alone, and the side thread finds nothing left); False where a prediction failed."""
        core.on_side_thread(self.work)
        return self.finish()

    def finish(self) -> bool:
        """Take the trees still left on this thread, then wait for those another thread is predicting; False where
        a prediction failed."""
        self.work()
        with self.cond:
            while not self.failed and self.added < len(self.trees):  # a tree the side thread is still predicting
                self.cond.wait()
            return not self.failed

    def work(self) -> None:
        """Predict the next tree not yet taken until none is left, adding what is ready in order. Never raises (the
        side thread's rule): a failure only marks the sum failed, and the forest's own method runs instead."""
        import numpy as np

        while True:
            with self.cond:
                if self.failed or self.taken >= len(self.trees):
                    return
                i = self.taken
                self.taken += 1
            try:
                pred = getattr(self.trees[i], self.method)(self.data, check_input=False)
            except Exception:  # noqa: BLE001 - see the docstring
                with self.cond:
                    self.failed = True
                    self.cond.notify_all()
                return
            with self.cond:
                self.ready[i] = pred
                while self.added in self.ready:
                    p = self.ready.pop(self.added)
                    if self.total is None:
                        self.total = np.zeros(p.shape, dtype=np.float64)
                    self.total += p
                    self.added += 1
                self.cond.notify_all()


class Started:
    """Training predictions begun on autolog's side thread (start()), for training_predictions to finish."""

    def __init__(self, model: Any, X: Any, job: _OrderedSum) -> None:
        self.model, self.X, self.job = model, X, job


def _new_job(model: Any, X: Any, method: str | None = None) -> _OrderedSum | None:
    """The two-thread sum of the forest's `method` (default: its own, _tree_method) over X, or None where it is not
    vouched for (see the module's docstring)."""
    own = _tree_method(model)
    if own is None or (method is not None and own != method) or usable_cores() < 2:
        return None
    data = _checked_data(model, X)
    return None if data is None else _OrderedSum(list(model.estimators_), own, data)


def start(model: Any, X: Any) -> Started | None:
    """Begin the forest's training predictions on autolog's side thread now — from `after`, when the fit returns,
    so that the side thread takes trees before the model's save is queued behind them — or None where they are not
    vouched for (see the module's docstring). training_predictions(…, started=) takes the rest and adds them up."""
    try:  # on the caller's thread, inside its `fit`: never raises (the step's own path runs instead)
        job = _new_job(model, X)
    except Exception:  # noqa: BLE001 - see the comment
        return None
    if job is None:
        return None
    core.on_side_thread(job.work)
    return Started(model, X, job)


def training_predictions(model: Any, X: Any, method: str, started: Started | None = None) -> Any | None:
    """model.predict_proba(X) (`method` 'predict_proba', forest classifiers) / model.predict(X) ('predict', forest
    regressors), the same bits, on two threads; None where that is not vouched for (see the module's docstring):
    then the caller asks the model. `started`: the same predictions begun by start() on this model and data."""
    if started is not None and started.model is model and started.X is X and started.job.method == method:
        job = started.job
        ok = job.finish()
    else:
        fresh = _new_job(model, X, method)
        if fresh is None:
            return None
        job, ok = fresh, fresh.run()
    if not ok or job.total is None:
        return None
    return job.total / len(job.trees)
