"""Bring your own model: convert scikit-learn, LightGBM, XGBoost, PyTorch and ONNX models into roost packages."""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "log_model": "roost.byom.log:log_model",
    "build_package": "roost.byom.log:build_package",
    "load_model_file": "roost.byom.log:load_model_file",
    "detect": "roost.byom.convert:detect",
    "Converted": "roost.byom.converted:Converted",
}

__all__ = sorted(_API)

__getattr__, __dir__ = lazy_api(__name__, _API)
