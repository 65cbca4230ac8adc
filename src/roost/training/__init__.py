"""Training: metrics, feature preprocessing, models, the trainer loop and export to the model package.

Importing this package is cheap; torch/onnx/lightgbm load inside the modules that need them.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roost.training.api import TrainResult

# the public modules (`roost.train(...)` itself is this package called as a function)
__all__ = [
    "api",
    "auto",
    "callbacks",
    "config",
    "export",
    "from_config",
    "metrics",
    "models",
    "preprocess",
    "torch_model",
    "trainer",
]


class _TrainModule(_types.ModuleType):
    """`roost.train` is both this package and the function `roost.train(config, ...)` (the CLI verb's twin)."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        """Train a model from a config (see roost.training.api.train)."""
        from roost.training.api import train

        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _TrainModule
