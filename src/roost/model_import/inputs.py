"""What the native-model converters share: the sample as a frame, the model's input columns, its task, and the
native scores the package is checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from roost.errors import RoostError


def sample_frame(sample: Any, columns: list[str] | None = None) -> Any:
    """The sample as a pandas DataFrame (arrays get columns f0..fN or the model's feature names)."""
    import pandas as pd

    if sample is None:
        raise RoostError(
            "a sample_input is required to convert and check this model",
            hint="pass a few rows of the training data (a DataFrame)",
        )
    if isinstance(sample, pd.DataFrame):
        return sample
    arr = np.asarray(sample)
    if arr.ndim != 2:
        raise RoostError(f"sample_input must be 2-D (rows × features), got shape {arr.shape}")
    cols = columns or [f"f{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


def check_columns(df: Any, expected: list[str] | None) -> list[str]:
    """The model's input columns; error when the sample lacks any."""
    if expected is None:
        return [str(c) for c in df.columns]
    missing = [c for c in expected if c not in df.columns]
    if missing:
        import re

        # LightGBM/XGBoost rewrite names ('mean radius' -> 'mean_radius'): accept the same columns, renamed
        sanitized = [re.sub(r"[^\w]", "_", str(c)) for c in df.columns]
        if sanitized == list(expected):
            return [str(c) for c in df.columns]
        raise RoostError(
            f"the sample's columns don't match the model: missing {_short(missing)}",
            hint=f"the model was fitted on {_short(list(expected))}; the sample has "
            f"{_short([str(c) for c in df.columns])}",
        )
    return list(expected)


def _short(xs: list[str], n: int = 8) -> str:
    return str(xs[:n])[:-1] + (f", … {len(xs) - n} more]" if len(xs) > n else "]")


def classifier_task(n_classes: int) -> str:
    return "binary" if n_classes == 2 else "multiclass"


def pick_output(model: Any, prefer: str) -> str:
    names = [o.name for o in model.graph.output]
    return prefer if prefer in names else names[-1]


Scorer = Callable[[Any], Any]  # a native model's predict/predict_proba: frame or array in, array-like out


def native_scores(task: str, predict_proba: Scorer | None, predict: Scorer) -> Callable[[Any], np.ndarray]:
    def run(df: Any) -> np.ndarray:
        if task in ("binary", "multiclass"):
            if predict_proba is None:
                raise RoostError(f"the {task} model has no predict_proba to check parity against")
            proba = np.asarray(predict_proba(df))
            return proba[:, 1] if task == "binary" else proba
        return np.asarray(predict(df)).reshape(-1)

    return run


def plain_value(v: Any) -> Any:
    """A numpy scalar as the Python value (a class label for the package's metadata)."""
    return v.item() if hasattr(v, "item") else v
