"""Autolog: one line records what scikit-learn, LightGBM and XGBoost fits already do (params, metrics, the model).

`roost.autologging()` turns on every flavor whose library is installed; `roost.sklearn.autolog()`,
`roost.lightgbm.autolog()`, `roost.xgboost.autolog()` turn on one. Importing this package imports none of them.
"""

from __future__ import annotations

import importlib
import importlib.util

from roost._lazy import lazy_api
from roost.autologging.core import MAX_TUNING_RUNS

FLAVORS = (
    "sklearn",
    "lightgbm",
    "xgboost",
    "lightning",
    "transformers",
)  # roost.autologging.<flavor> patches the library of the same name

PACKAGED = ("sklearn", "lightgbm", "xgboost")  # the flavors that log an ONNX package (`package=`)

__all__ = ["autolog", "FLAVORS", "MAX_TUNING_RUNS"]


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_datasets: bool = True,
    silent: bool = False,
    registered_model_name: str | None = None,
    experiment: str = "default",
    exclude_flavors: tuple[str, ...] = (),
    package: str = "deferred",
) -> list[str]:
    """Turn autologging on (or off with disable=True) for each installed library; returns the flavors changed.

    package="deferred" (the default) logs the native model of scikit-learn, LightGBM and XGBoost fits and builds
    its ONNX package on first need (roost.load_model, `roost serve`, registration, `roost models package RUN`);
    package="now" builds and checks the package right after the fit, on the background thread."""
    changed = []
    for flavor in FLAVORS:
        if flavor in exclude_flavors or importlib.util.find_spec(flavor) is None:
            continue
        module = importlib.import_module(f"roost.autologging.{flavor}")
        if disable:
            module.autolog(disable=True)
        else:
            module.autolog(
                log_models=log_models,
                log_datasets=log_datasets,
                silent=silent,
                registered_model_name=registered_model_name,
                experiment=experiment,
                **({"package": package} if flavor in PACKAGED else {}),
            )
        changed.append(flavor)
    return changed


__getattr__, __dir__ = lazy_api(__name__, {}, set(FLAVORS))
