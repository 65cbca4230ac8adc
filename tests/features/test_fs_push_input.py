"""Push's pandas conversion equals Arrow's own (`pa.array(..., from_pandas=True)`) on time columns of every unit
and zone, with NaT: the same instants, the same nulls."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "-05:30"])
def test_time_columns_convert_as_arrow_does(unit, tz):
    from roost.features.push_input import _pandas_array

    base = pd.to_datetime(
        ["2024-03-31T00:59:59.123456789Z", None, "1969-12-31T23:59:58Z", "2024-10-27T01:30:00Z"], format="ISO8601"
    )
    col = pd.Series(base.tz_convert(tz)).astype(f"datetime64[{unit}, {tz}]").array
    got = _pandas_array(col)
    ref = pa.array(col, from_pandas=True)
    assert got.null_count == ref.null_count == 1
    as_us = pa.timestamp(unit, tz="UTC")
    assert got.cast(as_us).equals(ref.cast(as_us)), (got, ref)
    assert pc.equal(got, ref).to_pylist() == [True, None, True, True]


@pytest.mark.parametrize("typ", ["float32", "float64"])
def test_nan_to_null_matches_a_brute_force(typ):
    """NaN becomes null (missing) and nothing else changes: arrays and chunked arrays, with and without nulls."""
    import math

    import numpy as np
    import pyarrow as pa

    from roost.features.checks import nan_to_null

    cases = [[0.5, 1.0], [0.5, float("nan")], [None, 2.0], [None, float("nan"), 3.0], [], [float("nan")]]
    for vals in cases:
        want = [None if v is None or math.isnan(v) else float(np.dtype(typ).type(v)) for v in vals]
        arr = pa.array(vals, typ)
        for col in (arr, pa.chunked_array([arr]), pa.chunked_array([arr, arr])):
            got = nan_to_null(col).to_pylist()
            assert got == want * (2 if isinstance(col, pa.ChunkedArray) and col.num_chunks == 2 else 1), vals


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
@pytest.mark.parametrize("step", [1, 2])
def test_time_columns_without_nat_convert_as_arrow_does(unit, step):
    """The no-NaT path (the int64 buffer as is), on a contiguous column and on a strided one (every other row)."""
    from roost.features.push_input import _pandas_array

    times = pd.Series(pd.date_range("2024-03-31", periods=12, freq="37min", tz="UTC")).astype(
        f"datetime64[{unit}, UTC]"
    )
    frame = pd.DataFrame({"t": times, "x": range(12)}).iloc[::step]
    col = frame["t"].array
    got = _pandas_array(col)
    ref = pa.array(col, from_pandas=True)
    assert got.null_count == ref.null_count == 0
    assert got.type == ref.type and got.to_pylist() == ref.to_pylist()


@pytest.mark.parametrize("labels", ["str", "object", "int"])
def test_column_labels_read_as_pandas_gives_them(labels):
    """Labels as text whatever the index holds: pandas' str dtype (Arrow-backed), object, integers; repeats refused."""
    from roost.errors import RoostError
    from roost.features.push_input import as_table

    names = {"str": ["a", "b", "é"], "object": ["a", "b", "é"], "int": [0, 1, 2]}[labels]
    df = pd.DataFrame(
        [[1, 2.5, "x"], [3, 4.5, None]], columns=pd.Index(names, dtype=labels if labels != "int" else None)
    )
    got = as_table(df, "v")
    assert got.column_names == [str(n) for n in names]
    ref = pa.Table.from_pandas(df, preserve_index=False)
    for i in range(3):
        assert got.column(i).to_pylist() == ref.column(i).to_pylist()
    with pytest.raises(RoostError, match="column names repeat"):
        as_table(pd.DataFrame([[1, 2]], columns=pd.Index(["a", "a"], dtype="str" if labels == "str" else object)), "v")
