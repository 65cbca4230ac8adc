"""Booleans logged as 0/1 or "true"/"false" are the same booleans: no drift where there is none, real shifts kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from roost.monitor.drift_compute import compare
from roost.monitor.profile import profile_frame
from roost.monitor.profile_drift import compare_profiles, compare_to_profile


def _bools(n: int, p: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < p


def _coded(b: np.ndarray, how: str) -> pd.Series:
    """The same booleans as a serving log might carry them."""
    if how == "bool":
        return pd.Series(b)
    if how == "int":
        return pd.Series(b.astype(np.int64))
    if how == "float_nan":  # 0/1 with a null in the JSON: pandas reads float64
        s = pd.Series(b.astype(np.float64))
        s.iloc[::50] = np.nan
        return s
    if how == "str":
        return pd.Series(np.where(b, "true", "false"), dtype=object)
    if how == "str_mixed_case":
        return pd.Series([("TRUE" if i % 2 else "True") if v else "false" for i, v in enumerate(b)], dtype=object)
    if how == "object_with_none":
        s = pd.Series(list(b), dtype=object)
        s.iloc[::40] = None
        return s
    raise AssertionError(how)


def _reference_stats(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """scipy's chi² p-value and a brute-force PSI on the False/True counts of the two sides."""
    r = np.array([np.sum(~ref), np.sum(ref)], np.float64)
    c = np.array([np.sum(~cur), np.sum(cur)], np.float64)
    p = stats.chi2_contingency(np.vstack([r, c]), correction=True).pvalue
    rs, cs = r / r.sum(), c / c.sum()
    psi = sum((cs[i] - rs[i]) * np.log(cs[i] / rs[i]) for i in range(2))
    return float(p), float(psi)


PAIRS = [
    ("bool", "int"),
    ("bool", "float_nan"),
    ("bool", "str"),
    ("bool", "str_mixed_case"),
    ("int", "bool"),
    ("int", "str"),
    ("float_nan", "bool"),
    ("str", "int"),
    ("object_with_none", "int"),
]


@pytest.mark.parametrize(("ref_how", "cur_how"), PAIRS)
def test_same_booleans_coded_differently_do_not_drift(ref_how: str, cur_how: str) -> None:
    """0/1 against True/False read as two new categories (or 'not numbers'): drift reported where there is none."""
    rb, cb = _bools(3000, 0.3, 1), _bools(2500, 0.3, 2)
    ref = pd.DataFrame({"flag": _coded(rb, ref_how)})
    cur = pd.DataFrame({"flag": _coded(cb, cur_how)})
    fd = compare(ref, cur, ["flag"]).feature("flag")
    assert not fd.drifted, fd.notes
    assert not any("unseen" in n for n in fd.notes), fd.notes
    assert fd.kind == "categorical"
    keep_r = ref["flag"].notna().to_numpy()
    keep_c = cur["flag"].notna().to_numpy()
    p, psi = _reference_stats(rb[keep_r], cb[keep_c])
    assert fd.stats["chi2_pvalue"] == pytest.approx(p, rel=1e-9)
    assert fd.stats["psi"] == pytest.approx(psi, rel=1e-9)


@pytest.mark.parametrize(("ref_how", "cur_how"), [("bool", "int"), ("int", "bool"), ("bool", "str")])
def test_a_real_shift_in_booleans_still_drifts(ref_how: str, cur_how: str) -> None:
    """30% true in the reference, 65% in the logs: drift, with the statistics of the normalised counts."""
    rb, cb = _bools(3000, 0.3, 3), _bools(2500, 0.65, 4)
    fd = compare(pd.DataFrame({"f": _coded(rb, ref_how)}), pd.DataFrame({"f": _coded(cb, cur_how)}), ["f"]).feature("f")
    p, psi = _reference_stats(rb, cb)
    assert fd.drifted and fd.stats["chi2_pvalue"] == pytest.approx(p, rel=1e-9) and p < 1e-6
    assert fd.stats["psi"] == pytest.approx(psi, rel=1e-9)
    assert not any("unseen" in n for n in fd.notes), fd.notes


def test_a_value_that_is_not_a_boolean_is_still_a_new_category() -> None:
    """A bool reference and logs holding 0, 1 and 2: 2 is unseen (and drifts); 0 and 1 are False and True."""
    rb = _bools(3000, 0.3, 5)
    codes = _bools(2500, 0.3, 6).astype(np.int64)
    codes[::10] = 2
    fd = compare(pd.DataFrame({"f": rb}), pd.DataFrame({"f": codes}), ["f"]).feature("f")
    assert fd.drifted
    assert any("1 category unseen in the reference: '2'" in n for n in fd.notes), fd.notes
    values = dict(zip(fd.bins["values"], fd.bins["cur"]))
    assert values == {
        "False": int(np.sum(codes == 0)),
        "True": int(np.sum(codes == 1)),
        "2": int(np.sum(codes == 2)),
    }


@pytest.mark.parametrize(("ref_how", "cur_how"), [("bool", "int"), ("bool", "str"), ("int", "bool"), ("str", "int")])
def test_profile_references_read_the_same_booleans(ref_how: str, cur_how: str) -> None:
    """A stored profile of a bool column against 0/1 logs was 'not comparable' (drift); so was the reverse."""
    rb, cb = _bools(3000, 0.3, 7), _bools(2500, 0.3, 8)
    ref, cur = pd.DataFrame({"f": _coded(rb, ref_how)}), pd.DataFrame({"f": _coded(cb, cur_how)})
    p, _ = _reference_stats(rb, cb)
    for fd in (
        compare_to_profile(profile_frame(ref), cur, ["f"]).feature("f"),
        compare_profiles(profile_frame(ref), profile_frame(cur), ["f"]).feature("f"),
    ):
        assert not fd.drifted, fd.notes
        assert fd.stats["chi2_pvalue"] == pytest.approx(p, rel=1e-9)
    shifted = pd.DataFrame({"f": _coded(_bools(2500, 0.65, 9), cur_how)})
    assert compare_profiles(profile_frame(ref), profile_frame(shifted), ["f"]).feature("f").drifted


def test_unhashable_values_next_to_booleans_are_compared_as_before() -> None:
    """Lists in an object column (no booleans to read) against bools: compared as categories, no TypeError."""
    ref = pd.DataFrame({"f": pd.Series([[1, 2], [3]] * 50, dtype=object)})
    cur = pd.DataFrame({"f": pd.Series([True, False] * 50)})
    fd = compare(ref, cur, ["f"]).feature("f")
    assert fd.drifted and any("unseen" in n for n in fd.notes)
