"""Every column kind and size path of drift picks a test that is computed (issue #16), checked against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from roost.monitor.api import drift
from roost.monitor.drift_compute import compare
from roost.monitor.profile import profile_frame

SIZES = (40, 300, 1000, 1001, 4000)  # both sides of the 1,000-row small-reference switch


def _column(kind: str, n: int, rng: np.random.Generator, shifted: bool) -> pd.Series:
    """One column of a given kind; `shifted` moves its distribution."""
    if kind == "flag":  # a 0/1 numeric flag: 10 % ones, or 90 % when shifted
        return pd.Series((rng.random(n) < (0.9 if shifted else 0.1)).astype(np.int64))
    if kind == "few_ints":  # 4 distinct integers
        return pd.Series(rng.choice(4, n, p=[0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]))
    if kind == "few_floats":  # 3 distinct floats
        return pd.Series(rng.choice([0.5, 1.5, 2.5], n, p=[0.1, 0.1, 0.8] if shifted else [0.8, 0.1, 0.1]))
    if kind == "continuous":
        return pd.Series(rng.normal(1.5 if shifted else 0.0, 1.0, n))
    if kind == "bool":
        return pd.Series(rng.random(n) < (0.9 if shifted else 0.1))
    if kind == "category":
        return pd.Series(rng.choice(list("abc"), n, p=[0.1, 0.1, 0.8] if shifted else [0.8, 0.1, 0.1]), dtype="str")
    if kind == "few_times":  # datetimes with 3 distinct values
        days = rng.choice(3, n, p=[0.1, 0.1, 0.8] if shifted else [0.8, 0.1, 0.1])
        return pd.Series(pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"))
    raise AssertionError(kind)


KINDS = ("flag", "few_ints", "few_floats", "continuous", "bool", "category", "few_times")


def _pair(n: int, seed: int, shifted: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({k: _column(k, n, rng, False) for k in KINDS})
    cur = pd.DataFrame({k: _column(k, n, rng, shifted) for k in KINDS})
    return ref, cur


def _scipy_score(method: str, r: pd.Series, c: pd.Series) -> float | None:
    """The decisive p-value recomputed with scipy (None for distance methods)."""
    if method == "chi2":
        keys = np.r_[r.astype(str).to_numpy(), c.astype(str).to_numpy()]
        side = np.r_[np.zeros(len(r)), np.ones(len(c))]
        return float(stats.chi2_contingency(pd.crosstab(side, keys).to_numpy()).pvalue)
    if method == "ks":
        return float(stats.ks_2samp(r.to_numpy(np.float64), c.to_numpy(np.float64)).pvalue)
    return None


@pytest.mark.parametrize("n", SIZES)
def test_every_kind_and_size_is_decided_by_a_computed_test(n: int) -> None:
    for shifted in (False, True):
        ref, cur = _pair(n, seed=n + shifted, shifted=shifted)
        rep = compare(ref, cur, features=list(KINDS))  # named: timestamps are left out by default
        for f in rep.features:
            assert f.status in ("ok", "drift") and f.method is not None, (f.feature, f.notes)
            assert f.score is not None and np.isfinite(f.score), (f.feature, f.method, f.notes)
            want = _scipy_score(f.method or "", ref[f.feature], cur[f.feature])
            if want is not None:
                assert f.score == pytest.approx(want, rel=1e-9, abs=1e-300), (f.feature, f.method)
        if shifted and n >= 300:  # a 10 % → 90 % move is found by every test at this size
            assert all(f.drifted for f in rep.features), [(f.feature, f.method, f.score) for f in rep.features]


def test_small_reference_binary_flag_drift_is_detected_with_chi2() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"flag": (rng.random(500) < 0.1).astype(np.int64)})
    cur = pd.DataFrame({"flag": (rng.random(500) < 0.9).astype(np.int64)})
    f = compare(ref, cur).feature("flag")
    table = np.array([np.bincount(ref.flag, minlength=2), np.bincount(cur.flag, minlength=2)])
    want = stats.chi2_contingency(table)
    assert f.method == "chi2" and f.status == "drift" and f.drifted
    assert f.stats["chi2"] == pytest.approx(want.statistic, rel=1e-9)
    assert f.score == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n", (300, 4000))
def test_profile_reference_paths_are_computed_too(n: int) -> None:
    ref, cur = _pair(n, seed=11, shifted=True)
    kw = {"features": list(KINDS)}
    for rep in (drift(profile_frame(ref), cur, **kw), drift(profile_frame(ref), profile_frame(cur), **kw)):
        for f in rep.features:
            assert f.status in ("ok", "drift") and f.score is not None and np.isfinite(f.score), (f.feature, f.notes)
            assert f.drifted, (f.feature, f.method, f.score)


def test_uncomputable_statistic_is_never_reported_as_not_drifted() -> None:
    from roost.monitor.drift_compute import FeatureDrift, decide

    fd = FeatureDrift("x", "numeric", "ok", n_ref=10, n_cur=10, stats={"n_unique": 2.0})
    decide(fd, "auto", {})
    assert fd.status != "ok" and any("not computed" in n or "could not" in n for n in fd.notes)


def test_infinite_values_are_reported() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 2000)
    y = rng.normal(0, 1, 2000)
    x[:3] = np.inf
    y[:7] = -np.inf
    y[7:9] = np.inf
    for rep in (
        compare(pd.DataFrame({"x": x}), pd.DataFrame({"x": y})),
        drift(profile_frame(pd.DataFrame({"x": x})), pd.DataFrame({"x": y})),
    ):
        notes = " ".join(rep.feature("x").notes)
        assert "infinite" in notes and "3" in notes and "9" in notes, notes


def test_ids_timestamps_and_label_are_left_out_by_default_and_can_be_named() -> None:
    rng = np.random.default_rng(5)
    n = 500

    def frame(start: int, t0: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_id": np.arange(start, start + n),
                "request": [f"r{start + i}" for i in range(n)],
                "event_time": pd.Timestamp(t0) + pd.to_timedelta(np.arange(n), unit="min"),
                "clicked": rng.integers(0, 2, n),
                "x": rng.normal(0, 1, n),
                "count": rng.integers(0, 1000, n),
            }
        )

    ref, cur = frame(0, "2024-01-01"), frame(10_000, "2024-03-01")
    for rep in (
        compare(ref, cur, label="clicked"),
        drift(profile_frame(ref), cur, features=None),
        drift(profile_frame(ref), profile_frame(cur)),
    ):
        names = [f.feature for f in rep.features]
        assert "x" in names and "count" in names, names
        assert not {"user_id", "request", "event_time"} & set(names), names
        assert any("left out by default" in n and "event_time (timestamp)" in n for n in rep.notes), rep.notes
    assert "clicked" not in [f.feature for f in compare(ref, cur, label="clicked").features]
    named = compare(ref, cur, features=["user_id", "event_time", "x"])
    assert [f.feature for f in named.features] == ["user_id", "event_time", "x"]
    assert named.feature("user_id").drifted and named.feature("event_time").drifted
