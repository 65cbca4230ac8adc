"""Attribute filters: a small JSON language compiled to a boolean mask over index slots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from roost.errors import RoostError, closest

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "nin", "exists")
HELP = (
    '{"category": "books"}, {"category": ["books", "games"]}, {"price": {"lt": 20, "gte": 5}}, '
    "operators: " + ", ".join(OPS)
)


def plain(value: Any) -> Any:
    """A filter with numpy scalars as Python values and tuples as lists (what the checks and the cache key read)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return [plain(v) for v in value.tolist()]
    return value.item() if isinstance(value, np.generic) else value


def _numeric(col: np.ndarray) -> bool:
    return col.dtype.kind in "biuf"


def _check_scalar(name: str, col: np.ndarray, value: Any, op: str) -> Any:
    """The comparison value, checked against the column's kind."""
    if isinstance(value, (list, dict)):
        raise RoostError(f"filter {name!r}: {op!r} takes a single value, got {type(value).__name__}", hint=HELP)
    if _numeric(col):
        if isinstance(value, bool) and op in ("eq", "ne"):
            return value  # a boolean attribute (True == 1; a missing value made the column float)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if op in ("eq", "ne") and (value is None or isinstance(value, str)):
                return value
            raise RoostError(
                f"filter {name!r}: attribute is numeric, got {value!r}", hint=f"compare {name} with a number"
            )
    elif op in ("lt", "lte", "gt", "gte") and not isinstance(value, str):
        raise RoostError(
            f"filter {name!r}: attribute holds text, cannot compare with {value!r} using {op!r}",
            hint=f"use a string value, or eq/in for {name}",
        )
    return value


def _in(col: np.ndarray, values: Any, name: str) -> np.ndarray:
    if not isinstance(values, (list, tuple)):
        raise RoostError(f"filter {name!r}: 'in' needs a list, got {values!r}", hint=HELP)
    bad = next((v for v in values if v is not None and not isinstance(v, (str, int, float))), None)
    if bad is not None:
        raise RoostError(f"filter {name!r}: 'in' takes a list of strings or numbers, got {bad!r}", hint=HELP)
    if not values:
        return np.zeros(len(col), bool)
    if _numeric(col):  # booleans count as 0/1; exact int64 matching for integers, float for the rest
        ints = [int(v) for v in values if isinstance(v, int) and -(2**63) <= v < 2**63]
        floats = [v for v in values if isinstance(v, float)]
        mask = np.isin(col, np.asarray(ints, np.int64)) if ints else np.zeros(len(col), bool)
        if any(v is None for v in values):  # null in the list: items missing the attribute, as for text
            mask |= ~_present(col)
        return np.asarray(mask | np.isin(col, np.asarray(floats, np.float64)), bool) if floats else mask
    wanted = set(values)
    return np.fromiter((v in wanted for v in col), bool, len(col))


def _cmp(col: np.ndarray, op: str, v: Any, name: str) -> np.ndarray:
    """Elementwise comparison of a column with one operator."""
    if op == "in":
        return _in(col, v, name)
    if op == "nin":
        return np.asarray(np.logical_and(~_in(col, v, name), _present(col)), bool)
    if op == "exists":
        return _present(col) if v else ~_present(col)
    v = _check_scalar(name, col, v, op)
    if v is None and op in ("eq", "ne"):  # null: the items missing the attribute (as for text), or the others
        return ~_present(col) if op == "eq" else _present(col)
    if _numeric(col) and isinstance(v, str):
        return np.zeros(len(col), bool) if op == "eq" else np.ones(len(col), bool)
    if op == "eq":
        return np.asarray(col == v, bool)
    if op == "ne":
        return np.asarray(np.logical_and(col != v, _present(col)), bool)
    if not _numeric(col):
        ok = _present(col)
        out = np.zeros(len(col), bool)
        sub = col[ok].astype(str)
        out[ok] = {"lt": sub < v, "lte": sub <= v, "gt": sub > v, "gte": sub >= v}[op]
        return out
    with np.errstate(invalid="ignore"):
        return np.asarray({"lt": col < v, "lte": col <= v, "gt": col > v, "gte": col >= v}[op], bool)


def _present(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "f":
        return np.asarray(np.logical_not(np.isnan(col)), bool)
    if _numeric(col):
        return np.ones(len(col), bool)
    return np.fromiter((v is not None and v == v for v in col), bool, len(col))


def evaluate(flt: Mapping[str, Any] | None, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray | None:
    """A boolean mask of length n (slots whose attributes match every clause), or None for no filter."""
    if flt is None or (isinstance(flt, Mapping) and not flt):
        return None
    if not isinstance(flt, Mapping):
        raise RoostError(f"filter must be an object, got {type(flt).__name__}", hint=HELP)
    flt = plain(flt)
    mask = np.ones(n, bool)
    for name, cond in flt.items():
        if name not in columns:
            near = closest(str(name), list(columns))
            raise RoostError(
                f"filter on unknown attribute {name!r}",
                hint=(f"did you mean {near!r}? " if near else "")
                + f"attributes: {sorted(columns) or 'none (build the index with --attributes)'}",
            )
        col = columns[name][:n]
        if isinstance(cond, Mapping):
            if not cond:
                raise RoostError(f"filter {name!r}: empty condition", hint=HELP)
            for op, v in cond.items():
                key = op[1:] if isinstance(op, str) and op.startswith("$") else op
                if key not in OPS:
                    raise RoostError(f"filter {name!r}: unknown operator {op!r}", hint="operators: " + ", ".join(OPS))
                mask &= _cmp(col, key, v, name)
        elif isinstance(cond, (list, tuple)):
            mask &= _in(col, cond, name)
        else:
            mask &= _cmp(col, "eq", cond, name)
    return mask
