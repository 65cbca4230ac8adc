"""Training: metrics, feature preprocessing, models, the trainer loop and export to the model package.

`roost.train(config, ...)` (roost.training.api.train) is the Python twin of `roost train`. Importing this package
is cheap; torch/onnx/lightgbm load inside the modules that need them.
"""

from __future__ import annotations

# the public modules
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
