"""autolog's fingerprint of a numeric array is roost.datasets.fingerprint of the frame pandas makes of it (the digest
`roost monitor` compares a table with): computed on the array at once, compared with the frame path on random
arrays of every plain dtype, with NaN, -0.0, infinities and a target column."""

import numpy as np
import pandas as pd
import pytest

from roost.autologging import record
from roost.datasets import fingerprint as frame_fingerprint


def _via_frame(X, y):
    df = pd.DataFrame(X)
    df.columns = [str(c) for c in df.columns]
    if y is not None and np.asarray(y).ndim == 1 and len(y) == len(df):
        df["__target__"] = np.asarray(y)
    return frame_fingerprint(df)


@pytest.mark.parametrize("dtype", record._PLAIN_DTYPES)
@pytest.mark.parametrize("target", [None, "int64", "float64", "bool", "2-D"])
def test_the_array_digest_is_the_frames(dtype, target):
    rng = np.random.default_rng(len(dtype) * 7 + (0 if target is None else len(target)))
    X = (rng.normal(size=(257, 5)) * 1000).astype(dtype) if dtype != "bool" else rng.random((257, 5)) < 0.5
    if X.dtype.kind == "f":
        X[::11, 1] = np.nan
        X[::13, 2] = -0.0
        X[::17, 3] = 0.0
        X[5, 4], X[6, 4] = np.inf, -np.inf
        uint = f"u{X.dtype.itemsize}"
        odd_nan = (np.array(np.nan, dtype=X.dtype).view(uint) + 1).view(X.dtype)  # a NaN with another payload
        X[::19, 0] = odd_nan
    y = None
    if target == "2-D":
        y = rng.integers(0, 3, size=(257, 2))
    elif target is not None:
        y = (rng.normal(size=257) * 10).astype(target) if target != "bool" else rng.random(257) < 0.5
    got = record._array_fingerprint(X, y)
    assert got is not None
    assert got == _via_frame(X, y)
    assert record.fingerprint(X, y)["data.fingerprint"] == got


def test_a_changed_value_or_column_order_changes_it():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), rng.integers(0, 2, 100)
    base = record._array_fingerprint(X, y)
    X2 = X.copy()
    X2[50, 2] = np.nextafter(X2[50, 2], np.inf)
    assert record._array_fingerprint(X2, y) != base
    assert record._array_fingerprint(X[:, [1, 0, 2, 3]], y) != base
    assert record._array_fingerprint(X.T.copy().T, y) == base  # Fortran order: the same values, the same digest


@pytest.mark.parametrize("case", ["object", "1-D", "no columns", "string target", "float16"])
def test_other_inputs_take_the_frame_path(case):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    if case == "object":
        X = X.astype(object)
    elif case == "1-D":
        X = X[:, 0]
    elif case == "no columns":
        X = X[:, :0]
    elif case == "string target":
        y = np.array(["a", "b"] * 10)
    elif case == "float16":
        X = X.astype(np.float16)
    assert record._array_fingerprint(X, y) is None
