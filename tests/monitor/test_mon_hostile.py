"""Drift on hostile columns: magnitudes near the float limit, checked against scipy on exactly rescaled data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from roost.monitor.drift_compute import compare
from roost.monitor.profile import profile_frame
from roost.monitor.profile_drift import compare_to_profile

# multiplying by a power of two is exact, and KS, chi², JS, PSI and the normed Wasserstein distance do not change
# under a common rescaling: scipy on the small copies is the reference for the huge ones
SCALE = 2.0**660  # ~4.8e198: squares overflow float64 (std is inf), spans do not


def _uniform(lo: float, hi: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, n)


def test_huge_values_keep_their_spread() -> None:
    """Values ~1e200: np.std overflows to inf, and the normed Wasserstein distance read 0 (no drift) for a shift
    of seven standard deviations."""
    a, b = _uniform(1, 2, 2000, 0), _uniform(3, 4, 1500, 1)
    rep = compare(pd.DataFrame({"x": a * SCALE}), pd.DataFrame({"x": b * SCALE}))
    fx = rep.feature("x")
    want = stats.wasserstein_distance(a, b) / np.std(a)
    assert fx.method == "wasserstein"
    assert fx.score == pytest.approx(want, rel=1e-9)
    assert fx.stats["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b) * SCALE, rel=1e-9)
    assert fx.stats["ref_std"] == pytest.approx(np.std(a) * SCALE, rel=1e-9)
    assert fx.drifted and fx.status == "drift"


def test_values_spanning_the_whole_float_range() -> None:
    """±1.7e308 sentinels next to ordinary values: max - min overflows; the Sturges bins raised ValueError
    ('cannot convert float NaN to integer')."""
    big = np.finfo(np.float64).max
    a = np.r_[np.full(30, big), np.full(30, -big), np.arange(30.0)]
    b = np.r_[np.full(5, big), np.arange(40.0)]
    fx = compare(pd.DataFrame({"x": a}), pd.DataFrame({"x": b})).feature("x")
    ref = stats.ks_2samp(a, b)
    assert fx.stats["ks"] == pytest.approx(ref.statistic, abs=1e-12)
    assert fx.stats["ks_pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    # W1 of the halves, doubled: the exact distance without the overflow
    assert fx.stats["wasserstein"] == pytest.approx(2 * stats.wasserstein_distance(a / 2, b / 2), rel=1e-9)
    edges = np.asarray(fx.bins["edges"])
    assert np.isfinite(edges).all() and edges[0] == -big and edges[-1] == big
    assert sum(fx.bins["ref"]) == a.size and sum(fx.bins["cur"]) == b.size  # every value in a bin
    assert fx.method == "ks" and fx.drifted  # 60 of 90 reference values are the sentinels, 5 of 45 now


def test_profile_reference_with_huge_values_is_not_silently_zero() -> None:
    """A profile's variance (m2) overflows at ~1e200: the normed distance must not read 0 (it was)."""
    a, b = _uniform(1, 2, 3000, 2) * SCALE, _uniform(3, 4, 2000, 3) * SCALE
    prof = profile_frame(pd.DataFrame({"x": a}))
    fx = compare_to_profile(prof, pd.DataFrame({"x": b})).feature("x")
    assert fx.drifted
    assert fx.stats.get("wasserstein_norm") != 0.0


# --- served vs recomputed values (skew) -------------------------------------------------------------------------
FLOATS = [0.0, -0.0, 1.0, 1.0 + 1e-7, 1.0 + 1e-5, -1.0, 1e-12, 1e308, -1e308, np.inf, -np.inf, np.nan, None]


def test_skew_float_equality_is_numpy_isclose_with_infinities() -> None:
    """+inf served and +inf recomputed were a mismatch (inf - inf is NaN), +inf against -inf a match (|inf| <= inf):
    the rule is numpy's isclose (same tolerances), with NaN and null both meaning missing."""
    import pyarrow as pa

    from roost.monitor.skew import compare_values

    pairs = [(x, y) for x in FLOATS for y in FLOATS]
    on = pa.array([x for x, _ in pairs], pa.float64())
    off = pa.array([y for _, y in pairs], pa.float64())
    got = compare_values(on, off, rtol=1e-6, atol=1e-9)

    def missing(v: float | None) -> bool:
        return v is None or np.isnan(v)

    want = [
        missing(x) and missing(y)
        if missing(x) or missing(y)
        else bool(np.isclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=False))
        for x, y in pairs
    ]
    bad = [(pairs[i], bool(got[i]), want[i]) for i in range(len(pairs)) if bool(got[i]) != want[i]]
    assert not bad, bad


def test_skew_timestamps_compare_as_instants() -> None:
    """The same instant in milliseconds and in microseconds, or shown in another zone, was a mismatch (compared as
    text); different instants still differ."""
    from datetime import UTC, datetime, timedelta

    import pyarrow as pa

    from roost.monitor.skew import compare_values

    t = [datetime(2024, 3, 10, 7, 30, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)]
    on = pa.array(t + [t[0]], pa.timestamp("ms", tz="UTC"))
    off = pa.array(t + [t[0] + timedelta(milliseconds=1)], pa.timestamp("us", tz="UTC"))
    assert compare_values(on, off).tolist() == [True, True, False]
    ny = off.cast(pa.timestamp("us", tz="America/New_York"))
    assert compare_values(on, ny).tolist() == [True, True, False]


@pytest.mark.parametrize("profiled", [False, True], ids=["sample", "profile"])
def test_psi_of_a_constant_reference_sees_a_shift(profiled: bool) -> None:
    """A constant reference has one decile edge, so a shift to another constant fell into the same bin: PSI 0.
    With ≤ 20 distinct reference values PSI is per value (as chi² and JS): brute force on the value table."""
    ref, cur = pd.DataFrame({"x": np.full(300, 1.0)}), pd.DataFrame({"x": np.r_[np.full(200, 2.0), np.full(100, 1.0)]})
    if profiled:
        fx = compare_to_profile(profile_frame(ref), cur, method="psi").feature("x")
    else:
        fx = compare(ref, cur, method="psi").feature("x")
    r, c = np.array([1.0, 0.0]), np.array([1 / 3, 2 / 3])  # shares of the values 1 and 2
    r[r == 0], c[c == 0] = 1e-4, 1e-4
    assert fx.stats["psi"] == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert fx.method == "psi" and fx.drifted


@pytest.mark.parametrize("tol", [{"rtol": -1e-6}, {"atol": float("nan")}, {"rtol": float("inf")}])
def test_skew_refuses_tolerances_that_are_not_finite_and_non_negative(tmp_path, tol: dict[str, float]) -> None:
    """Silently wrong counts: a negative rtol or a NaN atol made every inexact value a mismatch, rtol=inf made
    every finite value ok."""
    from roost.errors import RoostError
    from roost.monitor.skew import skew

    with pytest.raises(RoostError, match="tol must be a finite number >= 0"):
        skew(tmp_path, **tol)
