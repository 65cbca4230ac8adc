"""scikit-learn autolog: estimators, Pipelines and search CV record params, training metrics and the model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roost.autologging import core, forest
from roost.autologging.classification_metrics import fast_classification_metrics
from roost.autologging.record import (
    log_fingerprint_later,
    log_later,
    log_model,
    metrics_of,
    param_value,
    params_of,
    sample_rows,
    snapshot,
)

if TYPE_CHECKING:
    from roost.registry.run import Run

__all__ = ["autolog", "training_metrics", "FLAVOR"]

FLAVOR = "sklearn"
log = logging.getLogger(__name__)


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    max_tuning_runs: int = core.MAX_TUNING_RUNS,
    registered_model_name: str | None = None,
    experiment: str = "default",
    package: str = "deferred",
) -> None:
    """Record every scikit-learn `fit`: params, training metrics, search-CV candidates as child runs, the model.

    The training metrics and the model package are made on a background thread once `fit` returns; reading the run
    (roost.get_run, search_runs), ending it, and the interpreter's exit wait for them."""
    core.switch(FLAVOR, disable, lambda: [(cls, "fit", _wrap) for cls in _fit_classes()],
                log_models=log_models, log_datasets=log_datasets, silent=silent, max_tuning_runs=max_tuning_runs,
                registered_model_name=registered_model_name, experiment=experiment,
                package=package)  # fmt: skip


def _fit_classes() -> list[type]:
    """scikit-learn's estimator classes that define `fit` themselves (their bases included: BaseSearchCV…)."""
    from sklearn.utils import all_estimators

    found: dict[type, None] = {}
    for _name, cls in all_estimators():
        for c in cls.__mro__:
            if c.__module__.startswith("sklearn.") and "fit" in vars(c):
                found[c] = None
    return list(found)


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = core.bind(original, (self, *args), kwargs)
        given = call.arguments if call is not None else {}
        X, y = given.get("X"), given.get("y")
        if X is None and args:
            X = args[0]
        weight = given.get("sample_weight", kwargs.get("sample_weight"))
        kept: list[tuple[Any, Any]] = []

        def snapshots() -> tuple[Any, Any]:
            """X and y as given, copied once for the fingerprint and the training metrics together."""
            if not kept:
                kept.append((snapshot(X), snapshot(y)))
            return kept[0]

        return core.autologged(
            FLAVOR,
            type(self).__name__,
            lambda: original(self, *args, **kwargs),
            lambda run, conf: _before(run, conf, self, X, y, snapshots),
            lambda run, conf, _res: _after(run, conf, self, X, y, weight, snapshots),
            key=self,
        )

    return fit


Snapshots = Callable[[], tuple[Any, Any]]


def _before(run: Run, conf: core.Settings, est: Any, X: Any, y: Any, snapshots: Snapshots) -> core.Later:
    tags = {"estimator_name": type(est).__name__, "estimator_class": f"{type(est).__module__}.{type(est).__name__}"}
    fingerprint_step = log_fingerprint_later(run, conf, X, y, snapshots)
    return log_later(run, params_of(est.get_params(deep=True)), tags) + fingerprint_step


def _after(run: Run, conf: core.Settings, est: Any, X: Any, y: Any, weight: Any, snapshots: Snapshots) -> core.Later:
    """Search results now; the training metrics and the model (over a snapshot of the data) for the background."""
    from sklearn.model_selection._search import BaseSearchCV

    model = est
    if isinstance(est, BaseSearchCV):
        core.safely(conf, "the search results", _search_results, run, conf, est)
        model = getattr(est, "best_estimator_", None)
    if model is None or X is None:
        return []
    later: core.Later = []
    if y is not None:
        (Xs, ys), ws = snapshots(), snapshot(weight)
        # a forest's trees start on the side thread now, ahead of the model's save (the worker joins in)
        early = forest.start(model, Xs)
        later.append(("training metrics", lambda: _log_training_metrics(run, model, Xs, ys, ws, early)))
    if conf.log_models and _is_predictor(model):
        sample = sample_rows(X)
        # pickled on a thread of its own while the training metrics predict (both only read the fitted model)
        later += core.alongside([("the model", lambda: log_model(run, conf, model, sample))])
    return later


def _log_training_metrics(run: Run, model: Any, X: Any, y: Any, weight: Any, early: Any = None) -> None:
    scores = training_metrics(model, X, y, weight, early)
    if scores:
        run.log_metrics(scores)


def _is_predictor(model: Any) -> bool:
    from sklearn.base import is_classifier, is_regressor

    return hasattr(model, "predict") and (is_classifier(model) or is_regressor(model))


def training_metrics(
    model: Any, X: Any, y: Any, sample_weight: Any = None, early: forest.Started | None = None
) -> dict[str, float]:
    """Metrics of a fitted classifier/regressor on its fit data: training_* as MLflow names them (weighted averages
    for precision/recall/F1; log loss and ROC AUC from predict_proba). `early`: a forest's predictions begun by
    forest.start()."""
    import numpy as np
    from sklearn import metrics as m
    from sklearn.base import ClassifierMixin, RegressorMixin, is_classifier, is_regressor

    if not (is_classifier(model) or is_regressor(model)):
        return {}
    sw = sample_weight
    proba = None
    if is_classifier(model) and hasattr(model, "predict_proba"):
        proba = forest.training_predictions(model, X, "predict_proba", early)
        proba = model.predict_proba(X) if proba is None else proba
    pred = _argmax_predictions(model, proba)
    if pred is None:
        pred = forest.training_predictions(model, X, "predict", early)
        pred = model.predict(X) if pred is None else pred
    out: dict[str, Any] = {}
    fast = None
    if is_classifier(model) and hasattr(model, "classes_"):
        # scikit-learn's values by one numpy pass (same operations, no validation and label encoding per metric)
        fast = fast_classification_metrics(model.classes_, y, pred, proba, sw)
    if fast is not None:
        out.update(fast)
    elif is_classifier(model):
        out["training_accuracy_score"] = m.accuracy_score(y, pred, sample_weight=sw)
        # precision_score, recall_score and f1_score each compute the same support counts (one call: a third)
        p, r, f, _ = m.precision_recall_fscore_support(y, pred, average="weighted", sample_weight=sw)
        out["training_precision_score"], out["training_recall_score"], out["training_f1_score"] = p, r, f
        if proba is not None:
            classes = model.classes_
            out["training_log_loss"] = m.log_loss(y, proba, labels=classes, sample_weight=sw)
            if len(classes) == 2:
                out["training_roc_auc"] = m.roc_auc_score(y, proba[:, 1], sample_weight=sw)
            else:
                out["training_roc_auc"] = m.roc_auc_score(
                    y, proba, multi_class="ovr", average="weighted", labels=classes, sample_weight=sw
                )
    if is_classifier(model):
        default = getattr(type(model), "score", None) is ClassifierMixin.score
        out["training_score"] = out["training_accuracy_score"] if default else model.score(X, y, sample_weight=sw)
    else:
        mse = m.mean_squared_error(y, pred, sample_weight=sw)
        out["training_mean_squared_error"] = mse
        out["training_root_mean_squared_error"] = float(np.sqrt(mse))
        out["training_mean_absolute_error"] = m.mean_absolute_error(y, pred, sample_weight=sw)
        out["training_r2_score"] = m.r2_score(y, pred, sample_weight=sw)
        default = getattr(type(model), "score", None) is RegressorMixin.score
        out["training_score"] = out["training_r2_score"] if default else model.score(X, y, sample_weight=sw)
    return metrics_of(out)


def _argmax_predictions(model: Any, proba: Any) -> Any:
    """model.predict(X) from its predict_proba(X) where scikit-learn's own `predict` is exactly
    classes_[argmax(predict_proba(X))] (forests with one output, CalibratedClassifierCV, label propagation): one
    pass over the data instead of two. None for every other estimator: then `predict` is called."""
    import numpy as np

    if proba is None or not isinstance(proba, np.ndarray) or proba.ndim != 2:
        return None
    if _predict_is_argmax_of_proba(type(model)) and getattr(model, "n_outputs_", 1) == 1:
        return np.asarray(model.classes_)[np.argmax(proba, axis=1)]
    return None


def _predict_is_argmax_of_proba(cls: type) -> bool:
    """True when cls.predict is one of scikit-learn's that return classes_[argmax(self.predict_proba(X))]."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble._forest import ForestClassifier
    from sklearn.semi_supervised._label_propagation import BaseLabelPropagation

    fn = getattr(cls, "predict", None)
    return fn is not None and any(fn is base.predict for base in (ForestClassifier, CalibratedClassifierCV,
                                                                   BaseLabelPropagation))  # fmt: skip


def _search_results(run: Run, conf: core.Settings, search: Any) -> None:
    """Best params and score on the parent; the best `max_tuning_runs` candidates as child runs."""
    from roost.registry import api

    cv = getattr(search, "cv_results_", None)
    if cv is None:
        return
    if hasattr(search, "best_params_"):
        run.log_params(params_of(search.best_params_, "best_"))
    if hasattr(search, "best_score_"):
        run.log_metrics(metrics_of({"best_cv_score": search.best_score_}))
    rank_key = _rank_key(search, cv)
    n = len(cv["params"])
    order = sorted(range(n), key=lambda i: (cv[rank_key][i], i)) if rank_key else list(range(n))
    keep = order[: max(conf.max_tuning_runs, 0)]
    experiment = run.info.get("experiment") or conf.experiment
    parent_name = run.info.get("name") or type(search).__name__
    columns = [k for k in cv if k.startswith(("mean_", "std_", "rank_"))]
    for i in keep:
        child = api.start_run(
            experiment,
            name=f"{parent_name}-{i}",
            params={str(k): param_value(v) for k, v in cv["params"][i].items()},
            tags={"roost.autolog": f"{FLAVOR}.search", "roost.autolog.candidate": i},
            parent_run_id=run.id,
        )
        try:
            child.log_metrics(metrics_of({k: cv[k][i] for k in columns}))
        finally:
            child.end("FINISHED")
    if n > len(keep):
        run.set_tags({"roost.autolog.candidates_not_logged": n - len(keep)})


def _rank_key(search: Any, cv: dict[str, Any]) -> str | None:
    """The cv_results_ column that ranks candidates: rank_test_score, or rank_test_<refit metric>."""
    refit = getattr(search, "refit", True)
    key = f"rank_test_{refit}" if isinstance(refit, str) else "rank_test_score"
    if key in cv:
        return key
    return next((k for k in cv if k.startswith("rank_test_")), None)
