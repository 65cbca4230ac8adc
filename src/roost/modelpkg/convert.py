"""Raw column → graph-input array conversion, shared by training and the predictor (numpy/pandas only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from roost.errors import RoostError

NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32, "bool": np.bool_}

# Text that means "missing" in a numeric column: pandas.read_csv's default na_values (also Arrow's CSV null
# values), compared after stripping blanks, so "" and "  " are missing too. Any other text is refused.
MISSING_TOKENS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"}
    | {"NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def to_strings(values: Any) -> np.ndarray:
    """Strings as an object array; missing values become '' and integer-valued floats lose their '.0'."""
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_float_dtype(s):
        nn = s.dropna()
        if len(nn) == 0 or bool(np.all(np.mod(nn.to_numpy(), 1) == 0)):
            s = s.astype("Int64")
    out: np.ndarray = s.astype("string").fillna("").to_numpy(dtype=object)
    return out


def _is_missing(v: Any) -> bool:
    """True for None, NaN, pd.NA/NaT and the missing-value words of MISSING_TOKENS."""
    if isinstance(v, (str, bytes)):
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        return text.strip() in MISSING_TOKENS
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # lists, arrays: not a scalar, so not missing
        return False


def _column(name: str | None) -> str:
    """How an error names the column."""
    return f"column {name!r}" if name is not None else "a column"


def _where(i: int, s: pd.Series, index: Any) -> str:
    """How an error names row position `i` of `s`: the position, and the caller's index label when it differs."""
    labels = index if index is not None and len(index) == len(s) else s.index
    label = labels[i]
    return f"row {i}" if isinstance(label, (int, np.integer)) and label == i else f"row {i} (index {label!r:.40})"


def _numeric_kind(dtype: Any) -> bool:
    """True for dtypes whose values may be numbers: ints, floats, bools, objects and text (checked per value)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return _numeric_kind(dtype.categories.dtype)
    if isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype, pd.DatetimeTZDtype)):
        return False
    return getattr(dtype, "kind", "O") not in "mMcV"


def _numbers(s: pd.Series, dtype: str, name: str | None, index: Any) -> pd.Series:
    """`s` as numbers (missing → NaN); a RoostError naming column, row and value for anything else."""
    column = _column(name)
    if not _numeric_kind(s.dtype):  # dates would read as nanoseconds since 1970, complex numbers lose a part
        raise RoostError(
            f"{column} expects {dtype} numbers but holds {s.dtype} values",
            hint="convert it to numbers first (e.g. a timestamp to a number of days or an hour of day)",
        )
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return s  # already numbers: no parsing pass
    num = pd.to_numeric(s, errors="coerce")
    unparsed = num.isna().to_numpy() & ~s.isna().to_numpy()
    for i in np.flatnonzero(unparsed):
        value = s.iloc[i]
        if _is_missing(value):
            continue
        where = _where(int(i), s, index)
        raise RoostError(
            f"{column} expects {dtype} numbers but {where} holds {value!r:.60} ({type(value).__name__})",
            hint=f"convert {repr(name) if name else 'it'} to numbers first (missing: None, NaN, '', 'NA' or 'null')",
        )
    return num


def _check_range(v: pd.Series, dtype: str, name: str | None) -> None:
    """Refuse values an int dtype cannot hold (numpy's cast would wrap them silently)."""
    if len(v) == 0 or pd.api.types.is_bool_dtype(v):
        return
    info = np.iinfo(NUMPY_DTYPES[dtype])
    arr = v.to_numpy()
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr) & (arr >= float(info.min)) & (arr < -float(info.min))
    else:
        ok = (arr >= info.min) & (arr <= info.max)
    if not bool(np.all(ok)):
        i = int(np.flatnonzero(~ok)[0])
        raise RoostError(
            f"{_column(name)} expects {dtype} but row {i} holds {arr[i]!r:.40}, out of its range",
            hint=f"{dtype} holds {info.min:,} to {info.max:,}; check the column's values",
        )


_WORDS = {"true": True, "false": False, "1": True, "0": False}


def _booleans(s: pd.Series, name: str | None, index: Any) -> np.ndarray:
    """Booleans: bools, numbers (non-zero = True) and the words true/false/1/0; a RoostError for anything else."""
    if pd.api.types.is_bool_dtype(s) and not bool(s.isna().any()):
        plain: np.ndarray = s.to_numpy(dtype=bool)
        return plain
    out = np.empty(len(s), dtype=bool)
    for i, v in enumerate(s.to_numpy(dtype=object)):
        b: bool | None = None
        if isinstance(v, (bool, np.bool_)):
            b = bool(v)
        elif isinstance(v, (int, float, np.integer, np.floating)) and v == v:
            b = v != 0
        elif isinstance(v, str):
            b = _WORDS.get(v.strip().lower())
        if b is None:
            raise RoostError(
                f"{_column(name)} expects bool but {_where(i, s, index)} holds {v!r:.60} ({type(v).__name__})",
                hint="send True/False, 1/0 or the words true/false; a bool input has no missing value",
            )
        out[i] = b
    return out


def to_input(values: Any, dtype: str, name: str | None = None, index: Any = None) -> np.ndarray:
    """Convert a column (Series, list or array) to a 1-D array of a signature dtype (text in numbers: RoostError)."""
    if dtype == "string":
        return to_strings(values)
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    name = name if name is not None else (str(s.name) if s.name is not None else None)
    if dtype in ("float32", "float64"):
        num = _numbers(s, dtype, name, index)
        floats: np.ndarray = num.to_numpy(dtype=NUMPY_DTYPES[dtype], na_value=np.nan)
        return floats
    if dtype in ("int64", "int32"):
        v = _numbers(s, dtype, name, index).fillna(-1)
        _check_range(v, dtype, name)
        ints: np.ndarray = v.to_numpy().astype(NUMPY_DTYPES[dtype])
        return ints
    if dtype == "bool":
        return _booleans(s, name, index)
    raise ValueError(f"unknown signature dtype {dtype!r}")
