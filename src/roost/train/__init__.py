"""Training: metrics, feature preprocessing, models, the trainer loop and export to the model package.

Importing this package is cheap; torch/onnx/lightgbm load inside the modules that need them.
"""

from __future__ import annotations

import sys as _sys
import types as _types


class _TrainModule(_types.ModuleType):
    """`roost.train` is both this package and the function `roost.train(config, ...)` (the CLI verb's twin)."""

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        from roost.train.api import train

        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _TrainModule
