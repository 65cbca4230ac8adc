"""Booleans that arrive as 0/1 numbers or "true"/"false" strings, read as the booleans they are before drift compares.

Serving logs often carry a boolean as JSON 0/1 (or as the strings "true"/"false") while the training reference holds
a bool column, or the reverse. Compared as they come, 0 and 1 are two categories unseen in a True/False reference:
drift where there is none. When the reference of a feature is boolean (bool values, or only "true"/"false" strings),
or the current data is and the reference only codes booleans (0/1 numbers, bools, "true"/"false" strings), both
sides are read as False/True: the numbers 0 and 1, the bools, and the strings "true"/"false" (any case, spaces
trimmed). Any other value stays itself, so a 2 in the logs of a bool feature is still a new category.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from roost.monitor.profile import ColumnProfile

_WORDS = {"true": True, "false": False}


def as_bool(v: Any) -> Any:
    """`v` as False/True when it codes a boolean (0/1, a bool, "true"/"false"); anything else unchanged."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return bool(v) if v == 0 or v == 1 else v
    if isinstance(v, str):
        return _WORDS.get(v.strip().lower(), v)
    return v


def _distinct(s: Any) -> list[Any] | None:
    """The distinct non-missing values of a Series (None when they are unhashable, e.g. lists)."""
    import pandas as pd

    try:
        return list(pd.unique(s.dropna()))
    except TypeError:
        return None


def is_boolean(s: Any) -> bool:
    """Whether a Series holds booleans: a bool dtype, or (object/strings) only bools or "true"/"false" strings."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(s.dtype):
        return True
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return False
    values: list[Any] | None = []
    for part in (s.head(1000), s):  # a text column usually shows a non-boolean in its first rows: no full pass then
        values = _distinct(part)
        if values is None or not all(_is_bool_or_word(v) for v in values):
            return False
    return bool(values)


def _is_bool_or_word(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_)) or (isinstance(v, str) and v.strip().lower() in _WORDS)


def _is_coded(s: Any) -> bool:
    """Whether every non-missing value of a Series codes a boolean (0/1, bools, "true"/"false")."""
    values = _distinct(s)
    return values is not None and all(isinstance(as_bool(v), bool) for v in values)


def _read(s: Any) -> Any:
    """A Series with its boolean codes read as bools (object dtype, missing kept missing)."""
    import pandas as pd

    missing = s.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_complex_dtype(s.dtype):
        x = s.to_numpy(dtype=np.float64, na_value=np.nan)
        obj = np.array(s.astype(object).to_numpy(), dtype=object)  # a writable copy
        obj[x == 1], obj[x == 0] = True, False  # vectorised: a bool column compares as 0/1 here too
    else:
        obj = np.array(s.astype(object).map(as_bool).to_numpy(), dtype=object)
    obj[missing] = None
    return pd.Series(obj, index=s.index, dtype=object, name=s.name)


def align(ref: Any, cur: Any) -> tuple[Any, Any, str | None]:
    """Reference and current Series with boolean codes read as bools when one side is boolean, and a note saying so."""
    import pandas as pd

    rb, cb = is_boolean(ref), is_boolean(cur)
    if rb and cb and pd.api.types.is_bool_dtype(ref.dtype) and pd.api.types.is_bool_dtype(cur.dtype):
        return ref, cur, None
    if not (rb or cb) or (cb and not rb and not _is_coded(ref)):
        return ref, cur, None
    return _read(ref), _read(cur), f"booleans compared as True/False (reference {ref.dtype}, current {cur.dtype})"


# -- profiles -----------------------------------------------------------------------------------------------------
def _profile_boolean(p: ColumnProfile) -> bool:
    """A categorical profile whose categories are all booleans ("True"/"False", any case)."""
    if p.kind != "categorical" or p.other or not p.categories:
        return False
    return all(k.strip().lower() in _WORDS for k in p.categories)


def _profile_read(p: ColumnProfile) -> dict[str, int] | None:
    """Category counts of a profile with boolean codes read as "False"/"True" (None: numbers that are not 0/1)."""
    if p.kind == "categorical":
        out: dict[str, int] = {}
        for k, c in p.categories.items():
            key = str(_WORDS.get(k.strip().lower(), k))
            out[key] = out.get(key, 0) + c
        return out
    sk = p.sketch
    if p.kind != "numeric" or sk is None or sk.width or sk.neg or set(sk.pos) - {0} or p.min is None:
        return None
    ones = sk.pos.get(0, 0)  # the bucket (1/γ, 1]: every value in it is exactly 1 when their sum is their count
    if p.min < 0 or (p.max or 0.0) > 1 or abs(p.mean * p.count - ones) > 1e-6 * max(p.count, 1):
        return None
    return {k: n for k, n in (("False", sk.zero), ("True", ones)) if n}


def align_profiles(r: ColumnProfile, c: ColumnProfile) -> tuple[ColumnProfile, ColumnProfile, str | None]:
    """Two column profiles with boolean codes read as True/False when one side is boolean (see `align`)."""
    if not (_profile_boolean(r) or _profile_boolean(c)):
        return r, c, None
    rc, cc = _profile_read(r), _profile_read(c)
    if rc is None or cc is None or (r.kind == c.kind and r.categories == rc and c.categories == cc):
        return r, c, None
    note = f"booleans compared as True/False (reference {r.dtype}, current {c.dtype})"
    r2 = dataclasses.replace(r, kind="categorical", categories=rc, sketch=None)
    c2 = dataclasses.replace(c, kind="categorical", categories=cc, sketch=None)
    return r2, c2, note


def read_for_profile(ref: ColumnProfile, cur: Any) -> Any:
    """A current Series with boolean codes read as bools when the reference profile is boolean (2 stays 2)."""
    import pandas as pd

    return _read(cur) if _profile_boolean(ref) and not pd.api.types.is_bool_dtype(cur.dtype) else cur
