"""LightGBM autolog: lgb.train and LGBMClassifier/LGBMRegressor/LGBMRanker.fit record params, per-iteration eval
metrics, the best iteration, feature importance and the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roost.autologging import core
from roost.autologging.record import (
    EvalPoints,
    booster_params_later,
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

FLAVOR = "lightgbm"
# lgb.train's arguments that are data, functions or callbacks (the rest is logged as params, as MLflow does)
_NOT_LOGGED = (
    "train_set",
    "valid_sets",
    "valid_names",
    "fobj",
    "feval",
    "init_model",
    "learning_rates",
    "callbacks",
)


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    experiment: str = "default",
    package: str = "deferred",
) -> None:
    """Record every lgb.train and LightGBM scikit-learn `fit`: params, eval metrics per iteration, best iteration,
    feature importance (gain and split), the model (packaged on a background thread once the fit returns)."""
    core.switch(FLAVOR, disable, _patches, log_models=log_models, log_datasets=log_datasets, silent=silent,
                registered_model_name=registered_model_name, experiment=experiment,
                package=package)  # fmt: skip


def _patches() -> list[tuple[Any, str, Callable[[Any], Any]]]:
    import lightgbm
    import lightgbm.sklearn

    # lightgbm.sklearn calls its own name for train: patched too, so that a scikit-learn fit's run gets the booster
    # params it trains with (as MLflow logs them)
    patches: list[tuple[Any, str, Callable[[Any], Any]]] = [
        (lightgbm, "train", _wrap_train),
        (lightgbm.sklearn, "train", _wrap_train),
    ]
    for cls in (lightgbm.sklearn.LGBMModel, *lightgbm.sklearn.LGBMModel.__subclasses__()):
        if cls.__module__.startswith("lightgbm.") and "fit" in vars(cls):
            patches.append((cls, "fit", _wrap_fit))
    return patches


class _Recorder:
    """A LightGBM callback: each iteration's eval results kept for the background worker (steps `data-metric`)."""

    def __init__(self, run: Run, conf: core.Settings) -> None:
        # with record_evaluation: before early stopping (30), so both see the same iterations; on the instance, as
        # LightGBM reads it (it gives an instance without its own `order` one by the callback's position)
        self.order = 20
        self.points = EvalPoints(run, conf, lambda results: {f"{r[0]}-{r[1]}": r[2] for r in results})

    def __call__(self, env: Any) -> None:
        if env.evaluation_result_list:  # a fresh list each iteration: kept as it is
            self.points.add(env.iteration, env.evaluation_result_list)


def _with_recorder(callbacks: Any, run: Run, conf: core.Settings, kept: dict[str, Any]) -> tuple[list[Any], core.Later]:
    """The fit's callbacks (a copy) with the recorder (also in kept["points"], for `after`), and the background step
    that logs what it kept."""
    recorder = _Recorder(run, conf)
    kept["points"] = recorder.points
    return [*(callbacks or []), recorder], recorder.points.later()


def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    def train(*args: Any, **kwargs: Any) -> Any:
        call = core.bind(original, args, kwargs)
        if call is None:
            return original(*args, **kwargs)
        given = call.arguments
        inside = core.notes(FLAVOR)
        if inside is not None:  # a LightGBM scikit-learn fit's own train(): its booster params for that fit's run
            inside["train params"] = train_params(call, _NOT_LOGGED)
            return original(*args, **kwargs)
        dataset = given.get("train_set")
        raw = getattr(dataset, "data", None)
        label = getattr(dataset, "label", None)
        extra: dict[str, Any] = {}

        def before(run: Run, conf: core.Settings) -> core.Later:
            call.arguments["callbacks"], evals = _with_recorder(given.get("callbacks"), run, conf, extra)
            params = train_params(call, _NOT_LOGGED)
            if conf.log_models and raw is not None and not isinstance(raw, str):
                extra["sample"] = sample_rows(raw)
            return log_later(run, params) + log_fingerprint_later(run, conf, raw, label) + evals

        def after(run: Run, conf: core.Settings, booster: Any) -> core.Later:
            return _summarize(run, conf, booster, booster, extra.get("sample"), extra.get("points"))

        return core.autologged(FLAVOR, "lightgbm.train", lambda: original(*call.args, **call.kwargs), before, after)

    return train


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = core.bind(original, (self, *args), kwargs)
        if call is None:
            return original(self, *args, **kwargs)
        given = call.arguments
        X, y = given.get("X"), given.get("y")
        kept: dict[str, Any] = {}

        def before(run: Run, conf: core.Settings) -> core.Later:
            call.arguments["callbacks"], evals = _with_recorder(given.get("callbacks"), run, conf, kept)
            tags = {"estimator_name": type(self).__name__, "estimator_class": _qualname(self)}
            kept["params"] = params = params_of(self.get_params())
            return log_later(run, params, tags) + log_fingerprint_later(run, conf, X, y) + evals

        def after(run: Run, conf: core.Settings, _res: Any) -> core.Later:
            sample = None if X is None else sample_rows(X)
            booster_params = booster_params_later(run, kept.get("params", {}), core.notes(FLAVOR))
            return booster_params + _summarize(run, conf, self.booster_, self, sample, kept.get("points"))

        return core.autologged(
            FLAVOR, type(self).__name__, lambda: original(*call.args, **call.kwargs), before, after, key=self
        )

    return fit


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__name__}"


def _summarize(
    run: Run, conf: core.Settings, booster: Any, model: Any, sample: Any, points: EvalPoints | None
) -> core.Later:
    """Best iteration now; feature importance and the model of the trained booster for the background. After early
    stopping, as MLflow: `stopped_iteration` (the number of iterations run) and the best iteration's eval results
    once more as the last step (`points`: what the recorder kept)."""
    summary = {"num_iterations": booster.current_iteration()}
    best = int(getattr(booster, "best_iteration", 0) or 0)
    if best > 0:  # 0: no early stopping, every iteration is kept
        summary["best_iteration"] = best
        last = None if points is None else points.last_step()
        if points is not None and last is not None:
            summary["stopped_iteration"] = last + 1  # LightGBM counts iterations from 1 (best_iteration too)
            points.best_again(best - 1)
    run.log_metrics(summary)

    # read now (microseconds), so that the background steps do not share the booster with the model's save
    def importance() -> dict[str, dict[str, float]]:
        names = booster.feature_name()
        return {k: dict(zip(names, booster.feature_importance(importance_type=k).tolist())) for k in ("gain", "split")}

    later = read_now("feature importance", importance, lambda kinds: log_importance(run, kinds))
    if conf.log_models and sample is not None:
        # LightGBM writes its model text in C without the GIL: on a thread of its own beside the other steps
        later += core.alongside([("the model", lambda: log_model(run, conf, model, sample))])
    return later
