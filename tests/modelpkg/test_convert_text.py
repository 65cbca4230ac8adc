"""Text in a numeric model input: a RoostError naming column, value and row; real missing values stay NaN / -1."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelpkg_helpers import expected

from roost.errors import RoostError
from roost.modelpkg import load
from roost.modelpkg.convert import to_input


def test_predict_refuses_a_word_in_a_float_column(pkg: Path) -> None:
    p = load(pkg)
    df = pd.DataFrame({"x": [1.0, 2.0, "abc", "also bad"], "color": ["red"] * 4})
    with pytest.raises(RoostError, match=r"'x'.*row 2.*'abc'") as info:
        p.predict(df)
    assert info.value.hint and "number" in info.value.hint


def test_the_error_names_the_index_label_of_a_pandas_row(pkg: Path) -> None:
    df = pd.DataFrame({"x": [1.0, "n/a?"], "color": ["red", "red"]}, index=["u1", "u7"])
    with pytest.raises(RoostError, match=r"row 1 \(index 'u7'\).*'n/a\?'"):
        load(pkg).predict(df)


def test_run_refuses_text_too(pkg: Path) -> None:
    with pytest.raises(RoostError, match=r"'x'.*row 0.*'abc'"):
        load(pkg).run({"x": ["abc"], "color": ["red"]})


def test_missing_tokens_are_what_pandas_read_csv_reads_as_missing() -> None:
    """The reference: every token in MISSING_TOKENS is NaN after pd.read_csv with its default na_values."""
    from roost.modelpkg.convert import MISSING_TOKENS

    tokens = sorted(t for t in MISSING_TOKENS if t)
    col = pd.read_csv(io.StringIO("v\n" + "\n".join(tokens) + "\n"), dtype=object, keep_default_na=True)["v"]
    assert col.isna().all(), col[col.notna()].tolist()
    assert len(col) == len(tokens)


def test_real_missing_values_still_score_as_nan(pkg: Path) -> None:
    values = [None, np.nan, pd.NA, "", "  ", "NA", "nan", "NULL", "1.5", " 2 ", 3]
    df = pd.DataFrame({"x": pd.Series(values, dtype=object), "color": ["red"] * len(values)})
    want = expected([np.nan] * 8 + [1.5, 2.0, 3.0], ["red"] * len(values))
    np.testing.assert_allclose(load(pkg).predict(df), want, atol=1e-6)


def test_numeric_frames_take_the_fast_path_unchanged() -> None:
    x = np.array([1.0, np.nan, -2.5], np.float64)
    np.testing.assert_array_equal(to_input(x, "float32"), x.astype(np.float32))
    np.testing.assert_array_equal(to_input(pd.Series([1, None], dtype="Int64"), "float32"), [1.0, np.nan])


def test_int_columns_keep_minus_one_for_missing_and_refuse_words() -> None:
    np.testing.assert_array_equal(to_input(pd.Series(["7", None, "", np.nan], dtype=object), "int64"), [7, -1, -1, -1])
    with pytest.raises(RoostError, match=r"'user_id'.*row 1.*'u-42'"):
        to_input(pd.Series(["7", "u-42"], dtype=object, name="user_id"), "int64")


def test_a_huge_bad_string_is_cut_in_the_message() -> None:
    with pytest.raises(RoostError) as info:
        to_input(pd.Series(["1", "z" * 1_000_000], dtype=object), "float32", name="x")
    assert len(str(info.value)) < 400 and "zzz" in str(info.value)


def test_objects_that_are_not_numbers_are_refused() -> None:
    with pytest.raises(RoostError, match=r"row 0.*\[1, 2\]"):
        to_input(pd.Series([[1, 2]], dtype=object), "float64", name="v")


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([1, 2**40], "int32"), ([1.0, 1e30], "int64"), ([1.0, np.inf], "int64"), (["1", "5e12"], "int32")],
)
def test_ints_out_of_range_are_refused_not_wrapped(values: list, dtype: str) -> None:
    """numpy's astype wraps 2**40 into an int32 (and inf into int64.min) silently: the hash bucket would be wrong."""
    with pytest.raises(RoostError, match=rf"'user_id'.*{dtype}"):
        to_input(pd.Series(values, name="user_id"), dtype)


def test_ints_at_the_edges_of_the_range_pass() -> None:
    got = to_input(pd.Series([-(2**31), 2**31 - 1, None], dtype=object), "int32")
    np.testing.assert_array_equal(got, np.array([-(2**31), 2**31 - 1, -1], np.int32))


def test_bool_inputs_read_words_and_zero_one_like_pandas_users_mean() -> None:
    """astype(bool) made the word 'False' (and NaN) True: a silent wrong answer."""
    got = to_input(pd.Series(["False", "true", "0", "1", False, 1, np.True_], dtype=object), "bool")
    np.testing.assert_array_equal(got, [False, True, False, True, False, True, True])
    np.testing.assert_array_equal(to_input(np.array([0.0, 2.0]), "bool"), [False, True])


@pytest.mark.parametrize("values", [["yes please"], [None], [np.nan]], ids=["word", "None", "NaN"])
def test_bool_inputs_refuse_other_words_and_missing_values(values: list) -> None:
    with pytest.raises(RoostError, match=r"'flag'.*bool"):
        to_input(pd.Series(values, dtype=object, name="flag"), "bool")
