"""`roost tune` builds Optuna's multivariate/grouped TPE and its GP sampler without printing ExperimentalWarning."""

from __future__ import annotations

import warnings

import optuna
import pytest

from roost.tune.samplers import make_sampler
from roost.tune.search_space import Space

SPACE = {
    "model": {"type": {"choice": ["mlp", "logreg"]}},
    "lr": {"loguniform": [1e-4, 1e-1]},
    "dropout": {"uniform": [0.0, 0.5], "when": {"model.type": "mlp"}},
}


@pytest.mark.parametrize("name", ["tpe", "gp", "random"])
def test_make_sampler_emits_no_experimental_warning(name: str) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        make_sampler(name, Space.parse(SPACE), seed=0)
    assert not [w for w in seen if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


def test_other_warnings_still_show() -> None:
    """Only Optuna's ExperimentalWarning is silenced, and only inside the sampler's construction."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        make_sampler("tpe", Space.parse(SPACE), seed=0)
        warnings.warn("still here", optuna.exceptions.ExperimentalWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["still here"]
