"""Vectorised per-group metrics: group codes (intersectional), confusion counts, ROC-AUC, log loss in one pass each.

No Python loop over groups: counts come from `np.bincount` on group codes, and ROC-AUC from one sort by score and
one stable (radix) sort by group, with tie-averaged ranks inside each group (Mann–Whitney U, as scikit-learn's
roc_auc_score and roost.train.metrics.roc_auc).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

MISSING = "(missing)"


@dataclass
class Groups:
    """Row → group code for one or more sensitive columns; groups are the product of each column's values."""

    columns: list[str]
    codes: np.ndarray  # int64 per row, in [0, n_groups)
    levels: list[list[str]]  # the sorted values of each column

    @property
    def n_groups(self) -> int:
        """Number of groups (empty intersections included)."""
        return int(np.prod([len(lv) for lv in self.levels])) if self.levels else 1

    def labels(self) -> list[tuple[str, ...]]:
        """Group labels in code order (first column varies slowest)."""
        import itertools

        return list(itertools.product(*self.levels))


def _factorize(s: Any) -> tuple[np.ndarray, list[str]]:
    """(codes into sorted levels, levels as strings); missing values become the level '(missing)'."""
    import pandas as pd

    codes, uniques = pd.factorize(s, sort=True, use_na_sentinel=True)
    levels = [str(u) for u in uniques]
    codes = np.asarray(codes, dtype=np.int64)
    if (codes < 0).any():
        levels.append(MISSING)
        codes[codes < 0] = len(levels) - 1
    return codes, levels


def make_groups(df: Any, columns: Sequence[str]) -> Groups:
    """Group codes for the intersection of `columns` of a DataFrame."""
    codes = np.zeros(len(df), dtype=np.int64)
    levels: list[list[str]] = []
    for c in columns:
        cc, lv = _factorize(df[c])
        codes = codes * len(lv) + cc
        levels.append(lv)
    return Groups(list(columns), codes, levels)


def counts(g: Groups, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per group (where `mask`, if given)."""
    if mask is None:
        return np.bincount(g.codes, minlength=g.n_groups)
    return np.bincount(g.codes, weights=mask.astype(np.float64), minlength=g.n_groups).astype(np.int64)


def confusion(g: Groups, y: np.ndarray, yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tn, fp, fn, tp) per group for 0/1 labels and 0/1 predictions, in one bincount."""
    cell = g.codes * 4 + (y.astype(np.int64) << 1) + yhat.astype(np.int64)
    m = np.bincount(cell, minlength=g.n_groups * 4).reshape(g.n_groups, 4)
    return m[:, 0], m[:, 1], m[:, 2], m[:, 3]


def sums(g: Groups, values: np.ndarray) -> np.ndarray:
    """Sum of `values` per group."""
    return np.bincount(g.codes, weights=np.asarray(values, dtype=np.float64), minlength=g.n_groups)


def roc_auc(g: Groups, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC per group (NaN for a group with one class or no rows)."""
    n = y.size
    G = g.n_groups
    if n == 0:
        return np.full(G, np.nan)
    order = np.argsort(score)  # ties get averaged ranks below, so their order does not matter
    code_dtype = np.int16 if G < 32_767 else np.int64  # small ints sort by radix
    by_group = np.argsort(g.codes[order].astype(code_dtype), kind="stable")
    order = order[by_group]
    c = g.codes[order]
    s = np.asarray(score, dtype=np.float64)[order]
    yy = np.asarray(y, dtype=np.float64)[order]
    size = np.bincount(c, minlength=G)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(s[1:], s[:-1], out=new_run[1:])
    new_run[1:] |= c[1:] != c[:-1]
    first = np.flatnonzero(new_run)
    last = np.r_[first[1:] - 1, n - 1]
    run_rank = (first + last) / 2.0 - start[c[first]] + 1.0  # average 1-based rank of each tie run in its group
    rank = np.repeat(run_rank, last - first + 1)
    pos = np.bincount(c, weights=yy, minlength=G)
    neg = size - pos
    r_pos = np.bincount(c, weights=rank * yy, minlength=G)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (r_pos - pos * (pos + 1) / 2.0) / (pos * neg)
    auc[(pos == 0) | (neg == 0)] = np.nan
    return auc


def log_loss(g: Groups, y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> np.ndarray:
    """Mean binary cross-entropy per group (NaN for empty groups)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    yf = np.asarray(y, dtype=np.float64)
    ll = -(yf * np.log(p) + (1 - yf) * np.log1p(-p))
    n = np.bincount(g.codes, minlength=g.n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums(g, ll) / n
