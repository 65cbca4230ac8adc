"""Vectorised per-group metrics: group codes (intersectional), confusion counts, ROC-AUC, log loss in one pass each.

No Python loop over groups: counts come from `np.bincount` on group codes, and ROC-AUC from one sort by score and
one stable (radix) sort by group, with tie-averaged ranks inside each group (Mann–Whitney U, as scikit-learn's
roc_auc_score and roost.metrics.overall.roc_auc).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
    if len(set(levels)) < len(levels):  # 1 and '1', or a value '(missing)' beside missing ones: keep them apart
        levels = [repr(u) for u in uniques] + levels[len(uniques) :]
    return codes, levels


def factorize_columns(df: Any, columns: Sequence[str]) -> dict[str, tuple[np.ndarray, list[str]]]:
    """{column: (codes, levels)} for each column, factorized once."""
    return {c: _factorize(df[c]) for c in columns}


def combine(columns: Sequence[str], facts: dict[str, tuple[np.ndarray, list[str]]]) -> Groups:
    """The intersection of already factorized columns."""
    codes = np.zeros(len(facts[columns[0]][0]), dtype=np.int64) if columns else np.zeros(0, dtype=np.int64)
    levels: list[list[str]] = []
    for c in columns:
        cc, lv = facts[c]
        codes = cc.copy() if not levels else codes * len(lv) + cc
        levels.append(lv)
    return Groups(list(columns), codes, levels)


def make_groups(df: Any, columns: Sequence[str]) -> Groups:
    """Group codes for the intersection of `columns` of a DataFrame."""
    return combine(columns, factorize_columns(df, columns))


def counts(g: Groups, mask: np.ndarray | None = None) -> np.ndarray:
    """Rows per group (where `mask`, if given)."""
    if mask is None:
        return np.bincount(g.codes, minlength=g.n_groups)
    return np.bincount(g.codes, weights=mask.astype(np.float64), minlength=g.n_groups).astype(np.int64)


def confusion(g: Groups, y: np.ndarray, yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tn, fp, fn, tp) per group for 0/1 labels and 0/1 predictions, in one bincount."""
    cell = g.codes * 4
    np.add(cell, np.asarray(y, dtype=np.int8) << 1, out=cell)
    np.add(cell, np.asarray(yhat, dtype=np.int8), out=cell)
    m = np.bincount(cell, minlength=g.n_groups * 4).reshape(g.n_groups, 4)
    return m[:, 0], m[:, 1], m[:, 2], m[:, 3]


def sums(g: Groups, values: np.ndarray) -> np.ndarray:
    """Sum of `values` per group."""
    return np.bincount(g.codes, weights=np.asarray(values, dtype=np.float64), minlength=g.n_groups)


def _rank_sum_positives(
    ys: np.ndarray, ss: np.ndarray, group_of: Any, start: np.ndarray, G: int, tied: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sum of tie-averaged 1-based ranks of the positives, positives) per group, for rows sorted by score
    inside contiguous groups; `tied[k]` says row k+1 has the same score (and group) as row k."""
    pidx = np.flatnonzero(ys)
    pg = group_of(pidx)
    pos = np.bincount(pg, minlength=G).astype(np.float64)
    r = np.bincount(pg, weights=(pidx - start[pg] + 1).astype(np.float64), minlength=G).astype(np.float64)
    t = np.flatnonzero(tied)
    if t.size:  # ties: positives in a run of equal scores get the run's average rank instead of their own
        run_start = np.r_[True, t[1:] != t[:-1] + 1]
        a = t[run_start]  # first row of each tied run
        b = np.r_[t[np.flatnonzero(run_start)[1:] - 1], t[-1]] + 1  # last row of each tied run
        members = np.concatenate([t, b])  # every row of every tied run (runs never overlap)
        run_of = np.searchsorted(a, members, side="right") - 1
        is_pos = ys[members].astype(np.float64)
        avg = (a + b) / 2.0
        corr = np.bincount(run_of, weights=is_pos * (avg[run_of] - members), minlength=a.size)
        r += np.bincount(group_of(a), weights=corr, minlength=G)
    return r, pos


def roc_auc(g: Groups, y: np.ndarray, score: np.ndarray, overall: bool = False) -> Any:
    """ROC-AUC per group (NaN for a group with one class or no rows); with `overall`, (per group, overall AUC)."""
    n = y.size
    G = g.n_groups
    if n == 0:
        return (np.full(G, np.nan), float("nan")) if overall else np.full(G, np.nan)
    order = np.argsort(score)  # ties get averaged ranks, so their order does not matter
    code_dtype = np.int16 if G < 32_767 else np.int64  # small ints: smaller gathers, radix sort
    cs = g.codes.astype(code_dtype)[order]
    ss = np.asarray(score, dtype=np.float64)[order]
    ys = np.asarray(y, dtype=np.int8)[order]
    del order
    by_group = np.argsort(cs, kind="stable")  # score order kept inside each group
    size = np.bincount(cs, minlength=G)
    ends = np.cumsum(size)
    start = ends - size
    yy, s2 = ys[by_group], ss[by_group]
    del by_group
    tied = s2[1:] == s2[:-1]
    tied[ends[:-1][(ends[:-1] > 0) & (ends[:-1] < n)] - 1] = False  # no run across a group boundary

    def group_of(i: np.ndarray) -> np.ndarray:
        return np.searchsorted(ends, i, side="right")

    r_pos, pos = _rank_sum_positives(yy, s2, group_of, start, G, tied)
    neg = size - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (r_pos - pos * (pos + 1) / 2.0) / (pos * neg)
    auc[(pos == 0) | (neg == 0)] = np.nan
    if not overall:
        return auc
    zero = np.zeros(1, dtype=np.int64)
    r_all, p_all = _rank_sum_positives(ys, ss, lambda i: np.zeros(i.shape, dtype=np.int64), zero, 1, ss[1:] == ss[:-1])
    p, q = float(p_all[0]), float(n - p_all[0])
    if p == 0 or q == 0:
        return auc, float("nan")
    return auc, (float(r_all[0]) - p * (p + 1) / 2.0) / (p * q)


def log_loss(g: Groups, y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> np.ndarray:
    """Mean binary cross-entropy per group (NaN for empty groups)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    yf = np.asarray(y, dtype=np.float64)
    ll = -(yf * np.log(p) + (1 - yf) * np.log1p(-p))
    n = np.bincount(g.codes, minlength=g.n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums(g, ll) / n
