"""Two-sample drift statistics, vectorised on sorted arrays and count vectors (checked against scipy).

KS and Wasserstein share one merge of the two sorted samples; PSI, Jensen–Shannon and chi² work on bin or category
counts. Binning for Jensen–Shannon follows Evidently's (Sturges bins over both samples when the reference has more
than 20 distinct values, else one bin per value), so the numbers agree with Evidently's default methods; chi² on
numbers tests the same table (per value, as scipy's chi2_contingency, or per Sturges bin).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") switches to the asymptotic p-value above this
PSI_EPS = 1e-4
PSI_BINS = 10
NORM_FLOOR = 0.001  # Evidently's floor on the reference std for the normed Wasserstein distance
DISCRETE_MAX = 20  # reference distinct values up to which numbers are binned per value (Evidently)


def sorted_finite(x: np.ndarray) -> np.ndarray:
    """The finite values of `x` as a sorted float64 array."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    x.sort()
    return x


def n_unique_sorted(a: np.ndarray) -> int:
    """Distinct values of a sorted array."""
    return int(a.size and 1 + np.count_nonzero(a[1:] != a[:-1]))


def merged_cdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(merged sorted values, F_a − F_b at each merged position) for two sorted samples."""
    n1, n2 = a.size, b.size
    n = n1 + n2
    pos = np.searchsorted(a, b, side="right")
    pos += np.arange(n2)
    is_b = np.zeros(n, dtype=bool)
    is_b[pos] = True
    merged = np.empty(n)
    merged[pos] = b
    merged[~is_b] = a
    c2 = np.cumsum(is_b)
    c1 = np.arange(1, n + 1) - c2
    return merged, c1 / n1 - c2 / n2


def ks_wasserstein(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, int]:
    """(KS statistic, p-value as scipy's ks_2samp(method='auto'), Wasserstein-1, distinct values) of sorted samples."""
    from scipy import stats

    merged, cd = merged_cdfs(a, b)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is handled just below
        deltas = np.diff(merged)
        w = float(np.vecdot(np.abs(cd[:-1]), deltas))
    if not math.isfinite(w):  # the span overflows float64 (±1.8e308 both present): sum in exactly halved units
        w = 2.0 * float(np.vecdot(np.abs(cd[:-1]), np.diff(merged * 0.5)))
    ends = np.r_[deltas != 0, True]  # the CDFs are right-continuous: read them at the end of each tie run
    d_plus = float(max(cd[ends].max(), 0.0))
    d_minus = float(max(-cd[ends].min(), 0.0))
    d = d_minus if d_minus > d_plus else d_plus
    distinct = int(np.count_nonzero(ends))
    if max(a.size, b.size) <= KS_EXACT_MAX_N:  # exact distribution: scipy's own routine (cheap at this size)
        return d, float(stats.ks_2samp(a, b).pvalue), w, distinct
    return d, ks_pvalue_asymp(d, a.size, b.size), w, distinct


def ks_pvalue_asymp(d: float, n1: int, n2: int) -> float:
    """Asymptotic two-sided KS p-value for sizes n1, n2 (scipy's formula)."""
    from scipy import stats

    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """np.histogram_bin_edges(data, 'sturges') for data of size n with min lo and max hi (also where hi - lo
    overflows float64, which NumPy cannot bin: the edges are then computed in exactly quartered units)."""
    if not math.isfinite(hi - lo):
        return sturges_edges(lo * 0.25, hi * 0.25, n) * 4.0
    width = (hi - lo) / (math.log2(n) + 1.0)
    first, last = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
    bins = int(math.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, bins + 1, endpoint=True)


def sorted_histogram(a: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram(a, edges)[0] for a sorted array (last bin closed)."""
    idx = np.searchsorted(a, edges, side="left")
    idx[-1] = np.searchsorted(a, edges[-1], side="right")
    return np.diff(idx)


def value_counts_sorted(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, counts) of a sorted array."""
    if a.size == 0:
        return a, np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(a[1:] != a[:-1]) + 1]
    return a[starts], np.diff(np.r_[starts, a.size])


def aligned_counts(
    keys_a: np.ndarray, ca: np.ndarray, keys_b: np.ndarray, cb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(union of keys, counts of a, counts of b) over the union (keys sorted)."""
    keys = np.union1d(keys_a, keys_b)
    ra = np.zeros(keys.size, dtype=np.int64)
    rb = np.zeros(keys.size, dtype=np.int64)
    ra[np.searchsorted(keys, keys_a)] = ca
    rb[np.searchsorted(keys, keys_b)] = cb
    return keys, ra, rb


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (natural log) of two count or probability vectors, as scipy's jensenshannon."""
    from scipy.special import rel_entr

    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0
    return float(np.sqrt((np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / 2.0))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = PSI_EPS) -> float:
    """Population stability index Σ (c − r)·ln(c / r) of bin shares, empty bins set to `eps`."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    r = r / max(r.sum(), 1.0)
    c = c / max(c.sum(), 1.0)
    r[r == 0] = eps
    c[c == 0] = eps
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(a: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (distinct), for PSI on numbers."""
    if a.size == 0:
        return np.zeros(0)
    return np.unique(np.quantile(a, np.linspace(0, 1, bins + 1)[1:-1]))


def binned_by_edges(a: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Counts of a sorted array in (−inf, e1), [e1, e2), …, [ek, inf)."""
    idx = np.searchsorted(a, inner, side="left")
    return np.diff(np.r_[0, idx, a.size])


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """(statistic, p-value, dof) of the chi² test of homogeneity on the 2×k table, as scipy's chi2_contingency."""
    from scipy import stats

    obs = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    obs = obs[:, obs.sum(axis=0) > 0]
    k = obs.shape[1]
    if k < 2:
        return 0.0, 1.0, 0
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
    dof = k - 1
    if dof == 1:  # Yates' continuity correction, as chi2_contingency(correction=True)
        diff = expected - obs
        obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(np.sum((obs - expected) ** 2 / expected))
    return stat, float(stats.chi2.sf(stat, dof)), dof


def wasserstein_norm(w: float, ref_std: float) -> float:
    """Wasserstein distance in reference standard deviations (floor 0.001, as Evidently); NaN (not computed)
    when the standard deviation overflowed, never a silent 0."""
    if not math.isfinite(ref_std):
        return math.nan
    return w / max(ref_std, NORM_FLOOR)


def robust_std(a: np.ndarray) -> float:
    """Population standard deviation of finite values, also where the squares overflow float64 (|x| > 1e154)."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is handled just below
        out = float(np.std(a)) if a.size else 0.0
    if math.isfinite(out):
        return out
    _, e = np.frexp(np.max(np.abs(a)))  # rescale by a power of two (exact) so every |x| < 1
    return float(np.ldexp(np.std(np.ldexp(a, -e)), e))


def numeric_stats(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Every statistic for two sorted finite samples, plus the counts behind them for plots."""
    d, p, w, distinct = ks_wasserstein(a, b)
    std = robust_std(a)
    inner = quantile_edges(a)
    psi_v = psi(binned_by_edges(a, inner), binned_by_edges(b, inner))
    nu_ref = n_unique_sorted(a)
    if nu_ref > DISCRETE_MAX:
        lo, hi = min(a[0], b[0]), max(a[-1], b[-1])
        edges = sturges_edges(float(lo), float(hi), a.size + b.size)
        ra, rb = sorted_histogram(a, edges), sorted_histogram(b, edges)
        bins: dict[str, Any] = {"edges": edges.tolist()}
    else:
        (ka, ca), (kb, cb) = value_counts_sorted(a), value_counts_sorted(b)
        keys, ra, rb = aligned_counts(ka, ca, kb, cb)
        bins = {"values": keys.tolist()}
    bins.update(ref=ra.tolist(), cur=rb.tolist())
    if nu_ref <= DISCRETE_MAX:  # per value, as chi² and JS: a few reference values give fewer deciles than values
        psi_v = psi(ra, rb)  # (a constant reference has one edge, and a shift to another constant read PSI 0)
    chi, chi_p, dof = chi2_homogeneity(ra, rb)  # per value up to DISCRETE_MAX reference values, else per bin
    return {
        "chi2": chi,
        "chi2_pvalue": chi_p,
        "chi2_dof": dof,
        "ks": d,
        "ks_pvalue": p,
        "wasserstein": w,
        "wasserstein_norm": wasserstein_norm(w, std),
        "psi": psi_v,
        "js": js_distance(ra, rb),
        "ref_std": std,
        "ref_unique": nu_ref,
        "n_unique": distinct,
        "bins": bins,
    }


def categorical_stats(ref: dict[str, int], cur: dict[str, int]) -> dict[str, Any]:
    """Every statistic for two category-count maps (missing values excluded)."""
    keys = sorted(set(ref) | set(cur))
    ra = np.array([ref.get(k, 0) for k in keys], dtype=np.int64)
    rb = np.array([cur.get(k, 0) for k in keys], dtype=np.int64)
    out: dict[str, Any] = {"n_unique": len(keys), "bins": {"values": keys, "ref": ra.tolist(), "cur": rb.tolist()}}
    if ra.sum() == 0 or rb.sum() == 0:
        return out
    chi, p, dof = chi2_homogeneity(ra, rb)
    out.update(chi2=chi, chi2_pvalue=p, chi2_dof=dof, js=js_distance(ra, rb), psi=psi(ra, rb))
    return out
