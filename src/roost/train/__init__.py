"""Training: metrics, feature preprocessing, models, the trainer loop and export to the model package.

Importing this package is cheap; torch/onnx/lightgbm load inside the modules that need them.
"""
from __future__ import annotations
