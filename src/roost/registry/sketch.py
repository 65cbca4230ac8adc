"""Fixed log-spaced histogram buckets: a mergeable sketch whose quantiles are exact to one bucket.

A value v maps to an integer key, monotone in v: 0 for |v| < 1e-6, else ±(1 + the index of its bucket among
PER_DECADE buckets per decade from 1e-6 to 1e9). Histograms are {key: count} dicts (JSON: string keys), so the
rollups of two minutes, two workers or two fleets merge by adding counts, and a quantile over any window is the
bucket holding it: the true value lies in [lower, upper) of that bucket (about 6 % wide).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

PER_DECADE = 40
LOW_EXP = -6 * PER_DECADE  # 1e-6
HIGH_EXP = 9 * PER_DECADE  # 1e9: larger values share the top bucket
ZERO = 1e-6

Hist = dict[str, int]


def keys(values: np.ndarray) -> np.ndarray:
    """The bucket key of each value (int64; NaN maps to 0)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=1e300, neginf=-1e300)
    mag = np.abs(v)
    with np.errstate(divide="ignore"):
        idx = np.floor(np.log10(np.maximum(mag, ZERO)) * PER_DECADE + 1e-9)
    idx = np.clip(idx, LOW_EXP, HIGH_EXP).astype(np.int64) - LOW_EXP + 1
    out: np.ndarray = np.where(mag < ZERO, 0, np.sign(v).astype(np.int64) * idx)
    return out


def histogram(values: np.ndarray) -> Hist:
    """A histogram {key: count} of values."""
    k, n = np.unique(keys(values), return_counts=True)
    return {str(int(a)): int(b) for a, b in zip(k, n)}


def merge(into: Hist, other: Mapping[str, int]) -> Hist:
    """Add `other`'s counts into `into` (returned)."""
    for k, n in other.items():
        into[k] = into.get(k, 0) + int(n)
    return into


def bounds(key: int) -> tuple[float, float]:
    """The [lower, upper) range of values a key holds."""
    if key == 0:
        return (-ZERO, ZERO)
    e = abs(key) - 1 + LOW_EXP
    lo, hi = 10 ** (e / PER_DECADE), 10 ** ((e + 1) / PER_DECADE)
    if abs(key) - 1 + LOW_EXP >= HIGH_EXP:
        hi = math.inf
    return (lo, hi) if key > 0 else (-hi, -lo)


def quantile_key(hist: Mapping[str, int], q: float) -> int | None:
    """The key of the bucket holding the q-quantile (nearest rank: the ceil(q*n)-th smallest value), None if empty."""
    items = sorted((int(k), int(n)) for k, n in hist.items() if int(n) > 0)
    total = sum(n for _, n in items)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for k, n in items:
        seen += n
        if seen >= rank:
            return k
    return items[-1][0]


def quantile(hist: Mapping[str, int], q: float) -> float | None:
    """The q-quantile as its bucket's geometric middle (None if empty): within one bucket of the exact value."""
    k = quantile_key(hist, q)
    return None if k is None else _middle(k)


def merged(hists: Iterable[Mapping[str, int]]) -> Hist:
    """The sum of several histograms."""
    out: Hist = {}
    for h in hists:
        merge(out, h)
    return out


def quantiles(hist: Mapping[str, int], qs: Iterable[float]) -> list[float | None]:
    """Several quantiles of one histogram in one pass (each as `quantile` gives it)."""
    qs = list(qs)
    if not hist:
        return [None] * len(qs)
    k = np.fromiter((int(x) for x in hist), dtype=np.int64, count=len(hist))
    n = np.fromiter((int(x) for x in hist.values()), dtype=np.int64, count=len(hist))
    order = np.argsort(k)
    k, cum = k[order], np.cumsum(n[order])
    total = int(cum[-1])
    if total <= 0:
        return [None] * len(qs)
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q * total - 1e-9))
        key = int(k[min(len(k) - 1, int(np.searchsorted(cum, rank)))])
        out.append(_middle(key))
    return out


def _middle(key: int) -> float:
    """The value a quantile in bucket `key` is reported as: its geometric middle (0 for the zero bucket)."""
    if key == 0:
        return 0.0
    lo, hi = bounds(key)
    if math.isinf(hi) or math.isinf(lo):
        return lo if key > 0 else hi
    return math.copysign(math.sqrt(lo * hi), lo)


# Dense form: many histograms as the rows of one count matrix over a contiguous range of keys, so that window sums
# and quantiles of hundreds of histograms are a few array operations (the model page's traffic charts).
TOP = HIGH_EXP - LOW_EXP + 1  # the largest |key|
_TEXT = str.maketrans('{}":,', "     ")


def parse_many(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index, key, count) of every bucket of several histograms given as their JSON text ({"key": count})."""
    sizes = np.fromiter((t.count(":") for t in texts), dtype=np.int64, count=len(texts))
    flat = np.fromstring(" ".join(t.translate(_TEXT) for t in texts) or "0", dtype=np.int64, sep=" ")
    flat = flat[: 2 * int(sizes.sum())].reshape(-1, 2)
    return np.repeat(np.arange(len(texts)), sizes), flat[:, 0], flat[:, 1]


def dense(row: np.ndarray, key: np.ndarray, count: np.ndarray, rows: int) -> tuple[np.ndarray, int]:
    """A (rows × width) count matrix of the buckets, and the key of its first column (width: the keys in use)."""
    if len(key) == 0:
        return np.zeros((rows, 1), dtype=np.int64), 0
    lo, hi = int(key.min()), int(key.max())
    width = hi - lo + 1
    flat = np.bincount(row * width + (key - lo), weights=count, minlength=rows * width)
    return np.rint(flat).astype(np.int64).reshape(rows, width), lo


def dense_quantiles(counts: np.ndarray, first_key: int, qs: Iterable[float]) -> np.ndarray:
    """(rows × len(qs)) quantiles of each row of a dense count matrix, as `quantiles` gives them; NaN for empty rows."""
    qs = list(qs)
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1] if cum.shape[1] else np.zeros(len(counts), dtype=np.int64)
    out = np.full((len(counts), len(qs)), np.nan)
    has = total > 0
    if not has.any():
        return out
    for j, q in enumerate(qs):
        rank = np.maximum(1, np.ceil(q * total[has] - 1e-9)).astype(np.int64)
        col = np.minimum((cum[has] < rank[:, None]).sum(axis=1), counts.shape[1] - 1)
        out[has, j] = middles(col + first_key)
    return out


def middles(keys_: np.ndarray) -> np.ndarray:
    """`_middle` of each key (the value a quantile in that bucket is reported as)."""
    out: np.ndarray = _middle_table()[np.clip(keys_, -TOP, TOP) + TOP]
    return out


_MIDDLES: list[np.ndarray] = []


def _middle_table() -> np.ndarray:
    if not _MIDDLES:
        _MIDDLES.append(np.array([_middle(k) for k in range(-TOP, TOP + 1)], dtype=np.float64))
    return _MIDDLES[0]
