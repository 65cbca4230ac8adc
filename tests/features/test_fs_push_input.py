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


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint64", "Int64", "float64"])
@pytest.mark.parametrize("step", [1, 3])
def test_numeric_columns_convert_as_arrow_does(dtype, step):
    """NumPy integer columns go through their buffer as is: the same type and values as Arrow's own conversion (and
    nullable/float columns keep Arrow's, NaN/NA as null), contiguous or strided."""
    import numpy as np

    from roost.features.push_input import _pandas_array

    vals = pd.array([0, 1, 2**6, 5, 7, 9, 3, 4, 8], dtype=dtype)
    if dtype in ("Int64", "float64"):
        vals[2] = None
    frame = pd.DataFrame({"v": vals, "w": np.arange(9)}).iloc[::step]
    col = frame._get_column_array(0)
    got = _pandas_array(col)
    ref = pa.array(col, from_pandas=True)
    assert got.type == ref.type and got.to_pylist() == ref.to_pylist() and got.null_count == ref.null_count


def test_coerce_of_a_frames_arrays_equals_coerce_of_its_table():
    """`coerce` reads a DataFrame's arrays (`as_columns`, the push path) as it reads their table: the same typed rows,
    and the same refusal, message and hint, for every bad frame."""
    from roost.errors import RoostError
    from roost.features.push_input import as_columns, as_table, coerce

    view = {"name": "v", "join_keys": {"uid": "int64"}, "fields": {"n": "int64", "x": "float64", "s": "string"}}
    src = {"event_time": "ts", "created_time": "ct"}
    ts = pd.Series(pd.date_range("2024-05-01", periods=3, freq="h", tz="UTC"))
    good = pd.DataFrame({"uid": [1.0, 2.0, 3.0], "ts": ts, "n": [1, 2, 3], "x": [0.5, float("nan"), 2.0], "s": "a"})
    frames = [
        good,
        good.assign(ct=ts),
        good.assign(uid=[1.0, None, 3.0]),  # a null key
        good.assign(uid=[1.5, 2.0, 3.0]),  # a fractional key
        good.assign(n=[1.0, 2.5, 3.0]),  # a fractional int field
        good.assign(ts=ts.dt.tz_localize(None)),  # naive times
        good.assign(ts=[ts[0], None, ts[2]]),  # a null event time
        good.assign(s=[1, 2, 3]),  # ints for a string field
        good.drop(columns=["n"]),  # a missing field
        good.assign(extra=1),  # an unknown column
    ]

    def outcome(rows):
        try:
            return "rows", coerce(rows, view, src).to_pydict()
        except RoostError as exc:
            return "refused", (str(exc), exc.hint)

    outcomes = []
    for df in frames:
        want = outcome(as_table(df, "v"))
        assert outcome(as_columns(df, "v")) == want, df
        outcomes.append(want[0])
    assert outcomes == ["rows"] * 2 + ["refused"] * 8  # every bad frame is refused, both ways
    assert isinstance(as_columns(good, "v"), dict)
