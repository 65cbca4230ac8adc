"""XGBoost autolog: xgb.train and XGBClassifier/XGBRegressor/XGBRanker.fit record params, per-iteration eval
metrics, the best iteration, feature importance and the model."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roost.autologging import core
from roost.autologging.record import (
    EvalPoints,
    booster_params_later,
    fingerprint,
    log_evals,
    log_fingerprint_later,
    log_importance,
    log_later,
    log_model,
    params_of,
    read_now,
    sample_rows,
    train_params,
)

if TYPE_CHECKING:
    from roost.registry.run import Run

__all__ = ["autolog", "FLAVOR"]

FLAVOR = "xgboost"
# xgb.train's arguments that are data, functions or callbacks (the rest is logged as params, as MLflow does)
_NOT_LOGGED = ("dtrain", "evals", "obj", "feval", "evals_result", "xgb_model", "callbacks", "learning_rates")


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    experiment: str = "default",
    package: str = "deferred",
) -> None:
    """Record every xgb.train and XGBoost scikit-learn `fit`: params, eval metrics per iteration, best iteration,
    feature importance (gain and split counts), the model (packaged on a background thread once the fit returns)."""
    core.switch(FLAVOR, disable, _patches, log_models=log_models, log_datasets=log_datasets, silent=silent,
                registered_model_name=registered_model_name, experiment=experiment,
                package=package)  # fmt: skip


def _patches() -> list[tuple[Any, str, Callable[[Any], Any]]]:
    import xgboost
    import xgboost.sklearn

    # xgboost.sklearn calls its own name for train: patched too, so that a scikit-learn fit's run gets the booster
    # params it trains with (as MLflow logs them)
    patches: list[tuple[Any, str, Callable[[Any], Any]]] = [
        (xgboost, "train", _wrap_train),
        (xgboost.sklearn, "train", _wrap_train),
    ]
    seen: list[type] = [xgboost.sklearn.XGBModel]
    sub: type
    for cls in seen:  # every subclass of XGBModel in xgboost that defines fit itself
        for sub in type.__subclasses__(cls):
            if sub not in seen and sub.__module__.startswith("xgboost."):
                seen.append(sub)
        if "fit" in vars(cls):
            patches.append((cls, "fit", _wrap_fit))
    return patches


@functools.cache
def _recorder_class() -> type:
    """The TrainingCallback that keeps each iteration's eval results (a class made on first use: xgboost is imported
    lazily); the background worker logs them."""
    from xgboost.callback import TrainingCallback

    class Recorder(TrainingCallback):
        """Each iteration's latest eval results, logged as steps `data-metric` by the background worker."""

        def __init__(self, run: Run, conf: core.Settings) -> None:
            super().__init__()
            self.points = EvalPoints(run, conf, lambda point: point)

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            point = {f"{d}-{m}": vs[-1] for d, by in evals_log.items() for m, vs in by.items() if vs}
            if point:
                self.points.add(epoch, point)
            return False

    return Recorder


def _dmatrix_rows(dtrain: Any) -> Any:
    """The first rows of a DMatrix as a DataFrame (its feature names, else f0..fN) for checking the model."""
    import pandas as pd

    rows = sample_rows(dtrain.get_data())
    names = dtrain.feature_names or [f"f{i}" for i in range(rows.shape[1])]
    return pd.DataFrame(rows, columns=list(names))


def _dmatrix_fingerprint_later(run: Run, conf: core.Settings, dtrain: Any) -> core.Later:
    """The DMatrix's fingerprint as a background step (its data cannot change in place; its label can: read now)."""
    if not conf.log_datasets:
        return []
    label = dtrain.get_label()
    return [
        ("the data fingerprint", lambda: run.log_params(fingerprint(dtrain.get_data(), label if len(label) else None)))
    ]


def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    def train(*args: Any, **kwargs: Any) -> Any:
        call = core.bind(original, args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        given = call.arguments
        inside = core.notes(FLAVOR)
        if inside is not None:  # an XGBoost scikit-learn fit's own train(): its booster params for that fit's run
            inside["train params"] = train_params(call, _NOT_LOGGED)
            return original(*args, **kwargs)
        dtrain = given.get("dtrain")
        kept: dict[str, Any] = {}

        def before(run: Run, conf: core.Settings) -> core.Later:
            recorder = kept["recorder"] = _recorder_class()(run, conf)
            call.arguments["callbacks"] = [*(given.get("callbacks") or []), recorder]
            params = train_params(call, _NOT_LOGGED)
            fingerprint_step = [] if dtrain is None else _dmatrix_fingerprint_later(run, conf, dtrain)
            evals: core.Later = recorder.points.later()
            return log_later(run, params) + fingerprint_step + evals

        def after(run: Run, conf: core.Settings, booster: Any) -> core.Later:
            points: EvalPoints | None = getattr(kept.get("recorder"), "points", None)
            best = _best_iteration(booster)
            last = None if points is None else points.last_step()
            if points is not None and best is not None and last is not None:
                points.best_again(best)
            sample = None if dtrain is None else lambda: _dmatrix_rows(dtrain)
            return _summarize(run, conf, booster, booster, sample, stopped=last if best is not None else None)

        return core.autologged(FLAVOR, "xgboost.train", lambda: original(*call.args, **call.kwargs), before, after)

    return train


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = core.bind(original, (self, *args), kwargs)
        given = call.arguments if call is not None else {}
        X, y = given.get("X"), given.get("y")
        kept: dict[str, Any] = {}

        def before(run: Run, conf: core.Settings) -> core.Later:
            tags = {
                "estimator_name": type(self).__name__,
                "estimator_class": f"{type(self).__module__}.{type(self).__name__}",
            }
            kept["params"] = params = params_of(self.get_params())
            return log_later(run, params, tags) + log_fingerprint_later(run, conf, X, y)

        def after(run: Run, conf: core.Settings, _res: Any) -> core.Later:
            evals = getattr(self, "evals_result_", None) or {}
            booster = self.get_booster()
            n = max((len(vs) for by in evals.values() for vs in by.values()), default=0)
            best = _best_iteration(booster)
            if best is not None:  # the history covers this fit's rounds: those of a model it continued come first
                best -= booster.num_boosted_rounds() - n
            # the sklearn API keeps the history (its callbacks belong to the user): logged by the background worker
            # (a new fit of this estimator, which replaces the history, waits for it)
            history: core.Later = [("eval metrics", lambda: log_evals(run, evals, best=best))] if evals else []
            sample = None if X is None else sample_rows(X)
            stopped = n - 1 if best is not None and n else None
            steps = _summarize(
                run, conf, booster, self, None if sample is None else lambda: sample, side=True, stopped=stopped
            )
            return booster_params_later(run, kept.get("params", {}), core.notes(FLAVOR)) + history + steps

        return core.autologged(
            FLAVOR, type(self).__name__, lambda: original(self, *args, **kwargs), before, after, key=self
        )

    return fit


def _best_iteration(booster: Any) -> int | None:
    """The best iteration (from 0), set by early stopping only."""
    best = booster.attr("best_iteration")
    return None if best is None else int(best)


def _summarize(
    run: Run,
    conf: core.Settings,
    booster: Any,
    model: Any,
    sample: Callable[[], Any] | None,
    side: bool = False,
    stopped: int | None = None,
) -> core.Later:
    """Best iteration and feature importance now; the importance's files and the model of the trained booster (checked
    on `sample()`, rows of the fit data) for the background — the model on a thread of its own with `side` (where
    `sample()` does not read a DMatrix that another step reads). `stopped`: after early stopping, the last iteration
    evaluated (from 0), logged as `stopped_iteration` as MLflow does."""
    summary: dict[str, float] = {"num_iterations": booster.num_boosted_rounds()}
    best = _best_iteration(booster)
    if best is not None:
        summary["best_iteration"] = best
        if stopped is not None:
            summary["stopped_iteration"] = stopped
    run.log_metrics(summary)

    # read now (a fraction of a ms), so that the background steps do not share the booster with the model's save
    def importance() -> dict[str, dict[str, float]]:
        names = booster.feature_names or [f"f{i}" for i in range(booster.num_features())]
        kinds = {}
        for ours, theirs in (("gain", "gain"), ("split", "weight")):
            got = booster.get_score(importance_type=theirs)
            kinds[ours] = {n: float(got.get(n, 0.0)) for n in names}
        return kinds

    later = read_now("feature importance", importance, lambda kinds: log_importance(run, kinds))
    if conf.log_models and sample is not None:
        step: core.Later = [("the model", lambda: log_model(run, conf, model, sample()))]
        later += core.alongside(step) if side else step
    return later
