"""Profiles: the merge law (profile of A ∪ B = merge of profiles), accuracy of sketches, round trips, odd columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.monitor.profile import Profile, merge_profiles, profile_frame
from roost.monitor.sketch import HyperLogLog, LogSketch

EXACT = ("rows", "missing", "infinite", "min", "max", "sketch", "hll", "categories", "other", "kind")


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A frame with numbers (NaN, ±inf, zeros, negatives, ties), strings with missing, bools and timestamps."""
    n = draw(st.integers(2, 120))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(0, draw(st.sampled_from([1e-6, 1.0, 1e6])), n)
    x[rng.random(n) < 0.2] = 0.0
    x[rng.random(n) < 0.1] = np.nan
    if draw(st.booleans()):
        x[rng.random(n) < 0.05] = np.inf
    ints = rng.integers(-5, 5, n)
    cats = pd.Series(rng.choice(["a", "b", "c", "d"], n), dtype="str")
    cats[rng.random(n) < 0.15] = None
    ts = pd.Series(pd.to_datetime(1_700_000_000 + rng.integers(0, 30 * 86400, n), unit="s", utc=True))
    return pd.DataFrame({"x": x, "i": ints, "c": cats, "b": rng.random(n) < 0.3, "t": ts})


def _same(a: Profile, b: Profile) -> None:
    """Exact equality of everything that merges exactly; mean and std to rounding."""
    assert a.rows == b.rows and list(a.columns) == list(b.columns)
    for name, ca in a.columns.items():
        cb = b.columns[name]
        for f in EXACT:
            assert getattr(ca, f) == getattr(cb, f), (name, f)
        if ca.count:
            assert math.isclose(ca.mean, cb.mean, rel_tol=1e-9, abs_tol=1e-12), name
        if ca.count > 1:
            assert math.isclose(ca.std, cb.std, rel_tol=1e-7, abs_tol=1e-12), name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), cut=st.floats(0, 1))
def test_merge_law(df: pd.DataFrame, cut: float) -> None:
    k = int(cut * len(df))
    whole = profile_frame(df)
    merged = profile_frame(df.iloc[:k]).merge(profile_frame(df.iloc[k:]))
    _same(whole, merged)


@settings(max_examples=25, deadline=None)
@given(df=frames(), cuts=st.lists(st.floats(0, 1), min_size=2, max_size=4))
def test_merge_over_many_parts_in_any_order(df: pd.DataFrame, cuts: list[float]) -> None:
    edges = sorted({0, len(df), *[int(c * len(df)) for c in cuts]})
    parts = [profile_frame(df.iloc[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    _same(profile_frame(df), merge_profiles(parts))
    _same(profile_frame(df), merge_profiles(parts[::-1]))


def test_statistics_match_pandas() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(2, 1, 20_000)
    x[::50] = np.nan
    s = pd.Series(x, name="x")
    c = profile_frame(s.to_frame())["x"]
    assert c.count == s.count() and c.missing == s.isna().sum()
    assert c.min == s.min() and c.max == s.max()
    assert math.isclose(c.mean, s.mean(), rel_tol=1e-12) and math.isclose(c.std, s.std(), rel_tol=1e-10)
    qs = [0.01, 0.1, 0.5, 0.9, 0.99]
    got = c.quantiles(qs)
    true = np.nanquantile(x, qs)
    assert np.all(np.abs(np.array(got) - true) <= 0.011 * np.abs(true) + 1e-9)  # 1% relative accuracy (+ rank)
    assert abs(c.cardinality - s.nunique()) / s.nunique() < 0.05
    edges, counts = c.histogram(10)
    assert len(edges) == 11 and sum(counts) == c.count


def test_hll_and_sketch_units() -> None:
    h = HyperLogLog()
    h.add(np.arange(50_000))
    assert abs(h.estimate() - 50_000) / 50_000 < 0.04
    h2 = HyperLogLog().add(np.arange(25_000, 75_000))
    assert abs(h.merge(h2).estimate() - 75_000) / 75_000 < 0.04
    assert HyperLogLog().add(np.array([1, 2, 3, 3])).estimate() == pytest.approx(3, abs=0.01)
    sk = LogSketch().add(np.array([-5.0, -1.0, 0.0, 1e-20, 2.0, 1000.0]))
    assert sk.count == 6 and sk.zero == 2
    assert sk.quantiles([0.0], -5, 1000)[0] == pytest.approx(-5, rel=0.01)
    assert LogSketch.from_dict(sk.to_dict()) == sk


def test_round_trip(tmp_path) -> None:
    df = pd.DataFrame({"x": [1.0, 2.5, np.nan], "c": ["a", None, "a"]})
    p = profile_frame(df, source="unit")
    q = Profile.load(p.save(tmp_path / "p.json"))
    _same(p, q)
    assert q.source == "unit" and q["c"].categories == {"a": 2}


def test_odd_columns_do_not_crash() -> None:
    df = pd.DataFrame(
        {
            "empty": [np.nan] * 5,
            "const": [7] * 5,
            "nulls": pd.Series([None] * 5, dtype="str"),
            "objs": [{"a": 1}, [1], "x", None, 3],
        }
    )
    p = profile_frame(df)
    assert p["empty"].count == 0 and p["empty"].quantiles((0.5,))[0] != p["empty"].quantiles((0.5,))[0]
    assert p["const"].std == 0 and p["const"].histogram(5)[1] == [5]
    assert p["nulls"].missing == 5 and p["nulls"].cardinality == 0
    assert p["objs"].count == 4
    rows = {r["column"]: r for r in p.summary()}
    assert rows["empty"]["missing"] == 1.0


def test_category_cap_folds_the_tail() -> None:
    s = pd.Series([f"v{i}" for i in range(50)] + ["v0"] * 10, name="c")
    c = profile_frame(s.to_frame(), max_categories=5)["c"]
    assert len(c.categories) == 5 and c.truncated and c.categories["v0"] == 11
    assert c.other == 60 - sum(c.categories.values())
    assert abs(c.cardinality - 50) < 3  # beyond the cap the HyperLogLog answers


def test_merge_with_column_on_one_side() -> None:
    a = profile_frame(pd.DataFrame({"x": [1.0, 2.0]}))
    b = profile_frame(pd.DataFrame({"x": [3.0], "y": ["k"]}))
    m = a.merge(b)
    assert m.rows == 3 and m["y"].missing == 2 and m["y"].categories == {"k": 1} and m["x"].max == 3.0
