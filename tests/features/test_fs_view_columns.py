"""ViewData.columns (what every online write encodes) against the Python values the table was built from: every
dtype, with and without nulls, several chunks, timestamps of every unit as UTC microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest


@pytest.mark.parametrize("chunks", [1, 3])
def test_columns_equal_the_values_written(chunks):
    from roost.features.online_stores import ViewData

    t0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    times = [t0 + timedelta(seconds=i, microseconds=7 * i) for i in range(6)]
    us = [int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) for t in times]
    vals = {
        "k": ([3, -1, 2**62, 0, 5, 7], pa.int64()),
        "i32": ([1, None, -3, 4, 2**31 - 1, 0], pa.int32()),
        "i64": ([-(2**63), 2**63 - 1, 0, 1, 2, 3], pa.int64()),
        "f32": ([0.5, 1.25, -2.0, 3.0, 2.0**100, 0.0], pa.float32()),
        "f64": ([0.1, None, float("inf"), -0.0, 1e-300, 2.5], pa.float64()),
        "b": ([True, False, None, True, True, False], pa.bool_()),
        "s": (["a", None, "", "é", "x" * 50, "z"], pa.string()),
        "t_ms": ([t.replace(microsecond=t.microsecond // 1000 * 1000) for t in times], pa.timestamp("ms", tz="UTC")),
        "__et": (times, pa.timestamp("ns", tz="Europe/Paris")),
        "__ct": ([times[0], None, *times[2:]], pa.timestamp("us", tz="UTC")),
    }
    cols = {}
    for name, (v, typ) in vals.items():
        arr = pa.array(v, typ)
        cols[name] = pa.chunked_array([arr[:2], arr[2:3], arr[3:]] if chunks == 3 else [arr])
    fields = {"i32": "int32", "i64": "int64", "f32": "float32", "f64": "float64", "b": "bool", "s": "string"}
    fields["t_ms"] = "timestamp"
    got = ViewData("v", {"k": "int64"}, fields, pa.table(cols)).columns()
    want = [vals[n][0] for n in ("k", *fields)]
    want[-1] = [u // 1000 * 1000 for u in us]  # t_ms: microseconds of the millisecond values
    want += [us, [us[0], None, *us[2:]]]
    assert got == want
    for g, w in zip(got, want):
        assert [type(x) for x in g] == [type(x) for x in w]
    empty = ViewData("v", {"k": "int64"}, fields, pa.table(cols).slice(0, 0)).columns()
    assert empty == [[] for _ in want]


@pytest.mark.parametrize("seed", range(6))
def test_large_strings_narrow_like_arrows_cast(seed):
    """push_input.small_strings (pandas' str columns arrive as large_string) equals Arrow's own cast: nulls, empty
    and multi-byte strings, sliced arrays, several chunks, all-empty and empty arrays."""
    import numpy as np

    from roost.features.push_input import small_strings

    rng = np.random.default_rng(seed)
    alphabet = ["", "a", "é", "日本", "x" * 40, "\U0001f600", "\x00"]
    vals = [None if rng.random() < 0.2 else "".join(rng.choice(alphabet, rng.integers(0, 4))) for _ in range(50)]
    if seed == 1:
        vals = ["" for _ in vals]
    arr = pa.array(vals, pa.large_string())
    cases = [arr, arr.slice(3, 20), arr.slice(0, 0), pa.chunked_array([arr]), pa.chunked_array([arr[:7], arr[7:]])]
    cases.append(pa.chunked_array([arr.slice(5)]))
    for c in cases:
        got = small_strings(c)
        assert got.type == pa.string()
        assert got.to_pylist() == c.cast(pa.string()).to_pylist()
        assert got.null_count == c.null_count
        (got.validate(full=True) if isinstance(got, pa.Array) else got.validate(full=True))
