"""Batch scoring of Parquet/CSV files or a SQL query with a model package, on the local, Spark or Ray engine.

`roost.predict(model, input, output, ...)` (roost.scoring.api.predict) is the Python twin of `roost predict`.
"""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "predict": "roost.scoring.api:predict",
    "PredictResult": "roost.scoring.api:PredictResult",
    "ENGINES": "roost.scoring.api:ENGINES",
    "resolve_package": "roost.scoring.api:resolve_package",
}

__all__ = ["ENGINES", "PredictResult", "predict", "resolve_package"]

__getattr__, __dir__ = lazy_api(__name__, _API)
