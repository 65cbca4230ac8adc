"""Hostile input files for roost.predict, part 2: folders whose files disagree on the schema, CSV files with
another delimiter, a BOM or a repeated column, huge and NaN values. Each is scored exactly like roost.load_model
on the same rows, or refused with a RoostError naming the file and the column (never a KeyError/ValueError)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from predictkit import expected, make_frame, read_output

import roost
from roost.errors import RoostError


def _parquet(df, path):
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


@pytest.fixture
def frames():
    """Two frames of 200 rows with distinct user ids."""
    return make_frame(200, seed=1), make_frame(200, seed=2)


def _folder(tmp_path, frames, second, fmt="parquet"):
    d = tmp_path / "in"
    d.mkdir()
    for name, df in (("a", frames[0]), ("b", second)):
        if fmt == "parquet":
            _parquet(df, d / f"{name}.parquet")
        else:
            df.to_csv(d / f"{name}.csv", index=False)
    return d


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_later_file_that_lacks_a_model_column_is_named(model, tmp_path, frames, fmt):
    d = _folder(tmp_path, frames, frames[1].drop(columns=["f3"]), fmt)
    with pytest.raises(RoostError, match=rf"b\.{fmt}") as exc:
        roost.predict(model, d, tmp_path / "o", record=False)
    assert "'f3'" in str(exc.value) and "a." + fmt in str(exc.value)
    assert not list((tmp_path / "o").glob("part-*.parquet"))  # refused before any part is written


def test_a_later_parquet_file_with_text_in_a_model_column_is_named(model, tmp_path, frames):
    d = _folder(tmp_path, frames, frames[1].assign(f1=frames[1]["f1"].astype(str)))
    with pytest.raises(RoostError, match=r"b\.parquet") as exc:
        roost.predict(model, d, tmp_path / "o", record=False)
    assert "'f1'" in str(exc.value)


def test_a_later_file_with_integers_where_the_first_has_floats_scores_exactly(model, tmp_path, frames):
    """f1 int64 in b.parquet, float64 in a.parquet: every row scored as load_model does, f1 kept as float64."""
    second = frames[1].assign(f1=frames[1]["f1"].round().astype("int64"))
    d = _folder(tmp_path, frames, second)
    res = roost.predict(model, d, tmp_path / "o", record=False)
    assert res.rows_out == 400
    got = read_output(tmp_path / "o")
    ref = pd.concat([frames[0], second.astype({"f1": "float64"})]).sort_values("user_id").reset_index(drop=True)
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)
    assert got["f1"].dtype == np.float64 and got["f1"].tolist() == ref["f1"].tolist()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_kept_column_of_another_kind_in_a_later_file_is_named(model, tmp_path, frames, fmt):
    d = _folder(tmp_path, frames, frames[1].assign(tag=1.5), fmt)
    with pytest.raises(RoostError, match="'tag'") as exc:
        roost.predict(model, d, tmp_path / "o", record=False)
    assert f"b.{fmt}" in str(exc.value)


def test_a_kept_value_that_does_not_fit_the_first_files_type_is_named(model, tmp_path, frames):
    """user_id is int64 in a.csv; b.csv holds 0.5 fractions: refused, not silently truncated."""
    d = _folder(tmp_path, frames, frames[1].assign(user_id=frames[1]["user_id"] + 0.5), "csv")
    with pytest.raises(RoostError, match="'user_id'") as exc:
        roost.predict(model, d, tmp_path / "o", record=False)
    assert "b.csv" in str(exc.value)


def test_a_csv_column_named_twice_is_a_clear_error(model, tmp_path, frames):
    df = frames[0].copy()
    df.insert(3, "f0_again", df["f0"])
    (tmp_path / "dup.csv").write_text(df.to_csv(index=False).replace("f0_again", "f0", 1))
    with pytest.raises(RoostError, match="'f0'") as exc:
        roost.predict(model, tmp_path / "dup.csv", tmp_path / "o", record=False)
    assert "2 times" in str(exc.value)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_csv_with_another_delimiter_says_so(model, tmp_path, frames, sep):
    frames[0].to_csv(tmp_path / "other.csv", index=False, sep=sep)
    with pytest.raises(RoostError, match="other.csv") as exc:
        roost.predict(model, tmp_path / "other.csv", tmp_path / "o", record=False)
    assert f"{sep!r}-separated" in str(exc.value) and "--table t=" in exc.value.hint


def test_the_sql_input_the_delimiter_hint_names_scores_the_file(model, tmp_path, frames):
    frames[0].to_csv(tmp_path / "semi.csv", index=False, sep=";")
    tables = {"t": tmp_path / "semi.csv"}  # the hint: --table t=FILE --input 'sql:SELECT * FROM t'
    roost.predict(model, "sql:SELECT * FROM t", tmp_path / "o", columns=["user_id"], tables=tables, record=False)
    got = read_output(tmp_path / "o")
    np.testing.assert_allclose(got["probability"], expected(model, frames[0]), atol=1e-6, rtol=0)


def test_bom_crlf_csv_and_huge_or_nan_values_score_like_load_model(model, tmp_path, frames):
    df = frames[0].copy()
    df.loc[[1, 2], "f1"] = np.nan
    df.loc[3, "f2"] = 1e300
    df.loc[4, "f3"] = -1e300
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False, lineterminator="\r\n").encode())
    roost.predict(model, tmp_path / "bom.csv", tmp_path / "o", record=False)
    got = read_output(tmp_path / "o")
    assert list(got.columns) == [*df.columns, "probability"]  # the BOM is not part of the first column's name
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0, equal_nan=True)


def test_a_column_empty_in_the_first_csv_takes_the_type_of_a_later_file(model, tmp_path, frames):
    """tag is an empty column in a.csv (Arrow reads it as null-typed) and text in b.csv: the output column is
    text, null for a.csv's rows — it was "column 'tag' of b.csv does not fit null"."""
    d = _folder(tmp_path, frames, frames[1], "csv")
    frames[0].assign(tag="").to_csv(d / "a.csv", index=False)
    res = roost.predict(model, d, tmp_path / "o", record=False)
    assert res.rows_out == 400
    got = read_output(tmp_path / "o")
    ref = pd.concat([frames[0], frames[1]]).sort_values("user_id").reset_index(drop=True)
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)
    first = got["user_id"].isin(frames[0]["user_id"])
    assert got.loc[first, "tag"].isna().all()
    assert got.loc[~first, "tag"].tolist() == ref.loc[~first, "tag"].tolist()
