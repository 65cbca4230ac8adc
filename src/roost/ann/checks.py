"""Input checks shared by the Python API and HTTP routes: vector shape, finiteness, k, ef."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from roost.errors import RoostError

MAX_K = 10_000
MAX_EF = 32_768  # search effort (ef_search / nprobe) per request: Milvus's ceiling; past the graph size it is exact


def item_label(what: str, i: int, names: Any = None) -> str:
    """'vector 3', or 'vector 3 (id 'sku-9')' when the row's id is known."""
    if names is None or isinstance(names, (str, bytes)):
        return f"{what} {i}"
    try:
        name = names[i]
    except (IndexError, KeyError, TypeError):
        return f"{what} {i}"
    return f"{what} {i} (id {name.item() if isinstance(name, np.generic) else name!r})"


def as_matrix(values: Any, dim: int, what: str = "vector", zero_ok: bool = True, names: Any = None) -> np.ndarray:
    """Vectors as a float32 [n, dim] matrix; errors name the offending row (and its id, given `names`)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        x = values
    elif isinstance(values, np.ndarray) and values.dtype.kind == "c":
        raise RoostError(f"{what}s are complex numbers", hint=f"send {dim} real numbers per {what}")
    else:
        rows = values if isinstance(values, (list, tuple)) else None
        if rows is not None and rows and isinstance(rows[0], (list, tuple, np.ndarray)):
            for i, r in enumerate(rows):
                if not isinstance(r, (list, tuple, np.ndarray)) or len(r) != dim:
                    got = len(r) if isinstance(r, (list, tuple, np.ndarray)) else type(r).__name__
                    raise RoostError(
                        f"{item_label(what, i, names)} has {got} dimensions, the index has {dim}",
                        hint=f"send {dim} numbers per {what}",
                    )
        try:
            x = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise RoostError(f"{what}s must be numbers", hint=f"send a list of {dim} numbers per {what}") from None
    if x.ndim == 1:
        x = x.reshape(1, -1) if x.size else x.reshape(0, dim)
    if x.ndim != 2:
        raise RoostError(f"{what}s must be a list of lists, got shape {list(x.shape)}")
    if x.shape[1] != dim:
        raise RoostError(
            f"{what} has {x.shape[1]} dimensions, the index has {dim}",
            hint=f"send {dim} numbers per {what} (was the index built from another model?)",
        )
    x = np.ascontiguousarray(x, dtype=np.float32)
    total = float(np.einsum("ij,ij->", x, x)) if x.size else 0.0
    if math.isfinite(total) and (zero_ok or total > 0 and len(x) == 1):
        return x  # every value finite (a NaN or inf would make the sum so); one non-zero vector
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        bad = "NaN" if np.isnan(x[i]).any() else "infinity"
        raise RoostError(f"{item_label(what, i, names)} contains {bad}", hint="send finite numbers only")
    if not zero_ok:
        zero = ~np.any(x != 0, axis=1)
        if zero.any():
            raise RoostError(
                f"{item_label(what, int(np.flatnonzero(zero)[0]), names)} is all zeros: cosine similarity is undefined",
                hint="drop it, or build the index with --metric ip or l2",
            )
    return x


def check_k(k: Any) -> int:
    """k as a positive int no larger than MAX_K."""
    if type(k) is int and 0 < k <= MAX_K:
        return k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k > MAX_K:
        raise RoostError(f"k must be an integer between 1 and {MAX_K}, got {k!r}", hint="e.g. k=10")
    return int(k)


def check_ef(ef: Any) -> int | None:
    """ef (search effort: ef_search or nprobe) as a positive int no larger than MAX_EF; None keeps the tuned one."""
    if ef is None:
        return None
    if isinstance(ef, bool) or not isinstance(ef, (int, np.integer)) or ef < 1 or ef > MAX_EF:
        raise RoostError(
            f"ef must be an integer between 1 and {MAX_EF}, got {ef!r}",
            hint="leave it out to use the effort tuned at build; an effort above the index size is already exhaustive",
        )
    return int(ef)
