"""Raw column → graph-input array conversion, shared by training and the predictor (numpy/pandas only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


def to_strings(values: Any) -> np.ndarray:
    """Strings as an object array; missing values become '' and integer-valued floats lose their '.0'."""
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_float_dtype(s):
        nn = s.dropna()
        if len(nn) == 0 or bool(np.all(np.mod(nn.to_numpy(), 1) == 0)):
            s = s.astype("Int64")
    out: np.ndarray = s.astype("string").fillna("").to_numpy(dtype=object)
    return out


def to_input(values: Any, dtype: str) -> np.ndarray:
    """Convert a column (Series, list or array) to a 1-D array of a signature dtype."""
    if dtype == "string":
        return to_strings(values)
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if dtype in ("float32", "float64"):
        floats: np.ndarray = pd.to_numeric(s, errors="coerce").to_numpy(dtype=NUMPY_DTYPES[dtype], na_value=np.nan)
        return floats
    if dtype in ("int64", "int32"):
        v = pd.to_numeric(s, errors="coerce")
        ints: np.ndarray = v.fillna(-1).to_numpy().astype(NUMPY_DTYPES[dtype])
        return ints
    if dtype == "bool":
        bools: np.ndarray = s.astype(bool).to_numpy()
        return bools
    raise ValueError(f"unknown signature dtype {dtype!r}")
