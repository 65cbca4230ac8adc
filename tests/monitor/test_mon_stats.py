"""Drift statistics equal scipy's on the same samples (hypothesis on random data, ties and both KS regimes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from roost.monitor import stats as S
from roost.monitor.drift_compute import compare


@st.composite
def samples(draw: st.DrawFn, max_n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Two samples: continuous or heavily tied, shifted or not, of different sizes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n1, n2 = draw(st.integers(1, max_n)), draw(st.integers(1, max_n))
    a = rng.normal(0, 1, n1)
    b = rng.normal(draw(st.floats(-1, 1)), draw(st.floats(0.5, 2)), n2)
    digits = draw(st.sampled_from([None, 0, 1]))
    if digits is not None:
        a, b = a.round(digits), b.round(digits)
    return a, b


def _sorted(x: np.ndarray) -> np.ndarray:
    return S.sorted_finite(x)


@settings(max_examples=150, deadline=None)
@given(ab=samples())
def test_ks_and_wasserstein_equal_scipy(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    d, p, w, distinct = S.ks_wasserstein(_sorted(a), _sorted(b))
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-15)
    assert distinct == len(np.unique(np.concatenate([a, b])))


def test_ks_asymptotic_regime_equals_scipy() -> None:
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.01, 0.05):
        a, b = rng.normal(0, 1, 30_000), rng.normal(shift, 1, 12_001).round(2)
        d, p, w, _ = S.ks_wasserstein(_sorted(a), _sorted(b))
        ref = stats.ks_2samp(a, b)
        assert d == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
        assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(ab=samples())
def test_jensen_shannon_bins_equal_numpy_and_scipy(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    st_ = S.numeric_stats(_sorted(a), _sorted(b))
    if len(np.unique(a)) > S.DISCRETE_MAX:  # Sturges bins over both samples (Evidently's binning)
        edges = np.histogram_bin_edges(np.concatenate([a, b]), bins="sturges")
        assert np.array_equal(st_["bins"]["edges"], edges)
        ra, rb = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
    else:  # one bin per value
        keys = np.union1d(a, b)
        ra = np.array([(a == k).sum() for k in keys])
        rb = np.array([(b == k).sum() for k in keys])
    assert st_["bins"]["ref"] == ra.tolist() and st_["bins"]["cur"] == rb.tolist()
    assert st_["js"] == pytest.approx(jensenshannon(ra / len(a), rb / len(b)), rel=1e-9, abs=1e-12)
    assert st_["wasserstein_norm"] == pytest.approx(stats.wasserstein_distance(a, b) / max(np.std(a), 0.001), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(ab=samples())
def test_psi_on_reference_deciles(ab: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = ab
    if len(np.unique(a)) <= S.DISCRETE_MAX:  # few reference values: per value over both samples (as chi², JS)
        keys = np.union1d(a, b)
        r = np.array([(a == k).sum() for k in keys]) / len(a)
        c = np.array([(b == k).sum() for k in keys]) / len(b)
    else:
        inner = np.unique(np.quantile(a, np.linspace(0, 1, 11)[1:-1]))
        edges = np.r_[-np.inf, inner, np.inf]
        # np.histogram closes bins on the left like searchsorted(side='left') of the edges
        r = np.array([((a >= lo) & (a < hi)).sum() for lo, hi in zip(edges[:-1], edges[1:])]) / len(a)
        c = np.array([((b >= lo) & (b < hi)).sum() for lo, hi in zip(edges[:-1], edges[1:])]) / len(b)
    r[r == 0], c[c == 0] = 1e-4, 1e-4
    assert S.numeric_stats(_sorted(a), _sorted(b))["psi"] == pytest.approx(
        np.sum((c - r) * np.log(c / r)), rel=1e-9, abs=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 8), n1=st.integers(1, 300), n2=st.integers(1, 300))
def test_chi2_equals_chi2_contingency(seed: int, k: int, n1: int, n2: int) -> None:
    rng = np.random.default_rng(seed)
    cats = [f"c{i}" for i in range(k)]
    a = pd.Series(rng.choice(cats, n1, p=rng.dirichlet(np.ones(k))))
    b = pd.Series(rng.choice(cats, n2, p=rng.dirichlet(np.ones(k))))
    out = S.categorical_stats(a.value_counts().to_dict(), b.value_counts().to_dict())
    table = pd.crosstab(np.r_[np.zeros(n1), np.ones(n2)], pd.concat([a, b]).to_numpy())
    if table.shape[1] < 2:
        assert out["chi2"] == 0.0 and out["chi2_pvalue"] == 1.0
        return
    ref = stats.chi2_contingency(table.to_numpy())
    assert out["chi2"] == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert out["chi2_pvalue"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert out["chi2_dof"] == ref.dof
    keys = sorted(set(a) | set(b))
    pa = np.array([(a == x).sum() for x in keys]) / n1
    pb = np.array([(b == x).sum() for x in keys]) / n2
    assert out["js"] == pytest.approx(jensenshannon(pa, pb), rel=1e-9, abs=1e-12)


def test_compare_uses_the_same_numbers() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(list("abc"), 3000)})
    cur = pd.DataFrame({"x": rng.normal(0.3, 1, 2000), "c": rng.choice(list("abcd"), 2000)})
    rep = compare(ref, cur)
    fx, fc = rep.feature("x"), rep.feature("c")
    # the same D is reached at several points whose float rounding differs by an ulp: compare to 1e-12
    assert fx.stats["ks"] == pytest.approx(stats.ks_2samp(ref.x, cur.x).statistic, abs=1e-12)
    assert (
        fx.method == "wasserstein"
        and fx.score == pytest.approx(stats.wasserstein_distance(ref.x, cur.x) / np.std(ref.x), rel=1e-12)
        and fx.drifted
    )
    assert fc.method == "js" and "unseen in the reference" in fc.notes[0]
