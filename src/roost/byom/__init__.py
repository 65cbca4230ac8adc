"""The former name of `roost.model_import` ("bring your own model"), kept so that code importing it keeps working.

Only the package's public names are here; new code imports `roost.model_import` (or calls `roost.log_model`).
"""

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
