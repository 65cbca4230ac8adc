"""Model import (bring your own model): convert scikit-learn, LightGBM, XGBoost, PyTorch and ONNX models into roost
packages (`roost.log_model`, `roost models import`); `roost.modelpkg` is the package format they are written in."""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "log_model": "roost.model_import.log:log_model",
    "build_package": "roost.model_import.log:build_package",
    "load_model_file": "roost.model_import.log:load_model_file",
    "detect": "roost.model_import.convert:detect",
    "Converted": "roost.model_import.converted:Converted",
}

__all__ = sorted(_API)

__getattr__, __dir__ = lazy_api(__name__, _API)
