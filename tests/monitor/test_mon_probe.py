"""Silent-wrong-answer probes of profiles, analysis, drift rules and reports, each against a reference computed here
(numpy, pandas, scikit-learn or brute force), not against roost's own output."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from roost.monitor.profile import merge_profiles, profile_column, profile_frame

# -- profiles -------------------------------------------------------------------------------------------------------


def test_mixed_type_column_counts_every_row_under_its_text() -> None:
    values = [1, "1", 1.0, True, None, np.nan, float("inf"), "a", "a", 2]
    c = profile_column("m", pd.Series(values, dtype=object))
    present = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    ref = Counter(str(v) for v in present)  # the profile keys categories by their text
    assert c.categories == dict(ref)
    assert c.missing == 2 and sum(c.categories.values()) + c.missing == len(values)
    assert c.cardinality == len(ref)


@pytest.mark.parametrize("dtype", ["int64", "Int64", "uint64"])
def test_distinct_count_of_very_large_integers(dtype: str) -> None:
    base = 10**18 if dtype != "uint64" else 2**63 + 10
    s = pd.Series([base + i for i in range(1000)], dtype=dtype)
    c = profile_column("id", s)
    assert abs(c.cardinality - s.nunique()) / s.nunique() < 0.05  # was 9: int → float64 merged neighbours


def test_large_integers_keep_equal_to_their_float_value_in_a_merge() -> None:
    a = profile_frame(pd.DataFrame({"x": np.array([2**60, 2**60 + 1], dtype=np.int64)}))
    b = profile_frame(pd.DataFrame({"x": np.array([float(2**60)])}))
    assert a.merge(b)["x"].cardinality == pytest.approx(2, abs=0.01)


@pytest.mark.parametrize(
    "values",
    [[0.0, 100.0], [1.0, 3.0], [1.0, 2.0, 3.0, 10.0], [5.0, 5.0, 7.0], list(np.linspace(-4, 9, 11)), [-3.0, 2.0]],
)
def test_quantiles_of_small_columns_interpolate_like_numpy(values: list[float]) -> None:
    c = profile_column("x", pd.Series(values))
    qs = [0.01, 0.25, 0.5, 0.75, 0.99]
    ref = np.quantile(values, qs)
    got = np.array(c.quantiles(qs))
    span = max(values) - min(values)
    assert np.all(np.abs(got - ref) <= 0.011 * np.abs(ref) + 0.011 * span + 1e-9), (got, ref)


def test_summary_median_of_two_values() -> None:
    row = profile_frame(pd.DataFrame({"x": [0.0, 100.0]})).summary()[0]
    assert row["p50"] == pytest.approx(50, rel=0.011)  # was 0: the lower of the two


def test_timezone_datetimes_and_booleans_and_empty_columns() -> None:
    t = pd.Series(pd.date_range("2024-03-09", periods=72, freq="h", tz="America/New_York"))
    c = profile_column("t", t)
    assert c.min == t.min().timestamp() and c.max == t.max().timestamp() and c.count == 72
    b = profile_column("b", pd.Series([True, False, None, True], dtype="boolean"))
    assert b.categories == {"True": 2, "False": 1} and b.missing == 1
    e = profile_column("e", pd.Series([], dtype=float))
    assert e.rows == 0 and np.isnan(e.quantiles((0.5,))[0]) and e.cardinality == 0


@pytest.mark.parametrize("order", [1, -1])
def test_merge_with_a_part_where_the_column_was_always_null(order: int) -> None:
    a = pd.DataFrame({"x": [1.0, 2.0, 5.0], "c": ["u", "v", "u"]})
    b = pd.DataFrame({"x": [None, None], "c": [None, None]})  # object columns: profiled as categories
    parts = [profile_frame(a), profile_frame(b)][::order]
    got = merge_profiles(parts)
    whole = pd.concat([a, b], ignore_index=True).astype({"x": float})
    assert got["x"].kind == "numeric" and got["x"].missing == 2 and got["x"].count == 3
    assert got["x"].mean == pytest.approx(whole["x"].mean()) and got["x"].std == pytest.approx(whole["x"].std())
    assert got["c"].categories == {"u": 2, "v": 1} and got["c"].missing == 2


def test_max_double_sentinels_profile_saves_and_keeps_its_mean(tmp_path) -> None:
    from fractions import Fraction

    from roost.monitor.profile import Profile

    x = [1.7e308, 1.7e308, 1.0, -1.7e308, 1.79e308]
    p = profile_frame(pd.DataFrame({"x": x}))
    exact = float(sum(Fraction(v) for v in x) / len(x))
    assert p["x"].mean == pytest.approx(exact, rel=1e-12)  # was inf: the sum overflowed
    q = Profile.load(p.save(tmp_path / "p.json"))  # was ValueError: inf/NaN are not JSON
    assert q["x"].mean == pytest.approx(exact, rel=1e-12) and q["x"].count == 5
    got, ref = np.array(q["x"].quantiles()), np.quantile(x, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    assert np.all(np.isfinite(got)) and np.all(np.abs(got - ref) <= 0.011 * np.abs(ref) + 0.02)
    edges, counts = q["x"].histogram(4)
    assert np.all(np.isfinite(edges)) and edges[0] == min(x) and edges[-1] == max(x)
    assert counts == np.histogram(np.array(x) / 2, bins=np.array(edges) / 2)[0].tolist()  # halves: no overflow
