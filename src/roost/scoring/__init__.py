"""Batch scoring of Parquet/CSV files or a SQL query with a model package, on the local, Spark or Ray engine.

`roost.predict` is both this package and the function `roost.predict(model, input, output, ...)`.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import TYPE_CHECKING, Any

from roost._lazy import lazy_api

if TYPE_CHECKING:
    from roost.scoring.api import PredictResult

_API = {
    "predict": "roost.scoring.api:predict",
    "PredictResult": "roost.scoring.api:PredictResult",
    "ENGINES": "roost.scoring.api:ENGINES",
    "resolve_package": "roost.scoring.api:resolve_package",
}

__all__ = ["ENGINES", "PredictResult", "predict", "resolve_package"]

__getattr__, __dir__ = lazy_api(__name__, _API)


class _PredictModule(_types.ModuleType):
    """`roost.predict` called as a function runs roost.scoring.api.predict (the CLI verb's twin)."""

    def __call__(self, *args: Any, **kwargs: Any) -> PredictResult:
        """Batch-score a model over files or a query (see roost.scoring.api.predict)."""
        from roost.scoring.api import predict

        return predict(*args, **kwargs)


_sys.modules[__name__].__class__ = _PredictModule
