"""Feature-spec inference and encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.errors import ConfigError
from roost.training.preprocess import FeatureSpec, encode_labels, infer_spec, infer_task


def test_infer_kinds_and_stats(frame: pd.DataFrame) -> None:
    spec = infer_spec(frame.assign(when=pd.Timestamp("2024-01-01")), label="clicked", exclude=["kind", "score"])
    kinds = {c.name: c.kind for c in spec.columns}
    assert kinds == {
        "x1": "numeric",
        "x2": "numeric",
        "color": "categorical",
        "user_id": "hash",
        "user_seg": "categorical",
        "item_id": "hash",
        "item_cat": "categorical",
    }
    x2 = next(c for c in spec.columns if c.name == "x2")
    assert x2.mean == pytest.approx(np.nanmean(frame.x2))
    assert x2.std == pytest.approx(np.nanstd(frame.x2))
    color = next(c for c in spec.columns if c.name == "color")
    assert color.vocab == ["blue", "green", "red", "violet"]  # missing ('') is not a category
    assert next(c for c in spec.columns if c.name == "user_id").buckets >= 100


def test_encode_oov_missing_and_hash() -> None:
    df = pd.DataFrame({"c": ["a", "a", "b", "b", "z"], "n": [1.0, np.nan, 3.0, 4.0, 5.0], "shop_id": [1, 2, 3, 4, 5]})
    spec = infer_spec(df)
    test = pd.DataFrame({"c": ["b", None, "z", "q"], "n": [np.nan, 2, 3, 4], "shop_id": [-7, 2, 3, 10**12]})
    c, n, h = spec.encode(test)
    assert c.tolist() == [2, 0, 0, 0]  # 'z' seen once < min_count → OOV
    assert np.isnan(n[0]) and n.dtype == np.float32
    assert h.dtype == np.int64 and h[0] == -7
    raw = spec.raw_inputs(test)
    assert raw["c"].tolist() == ["b", "", "z", "q"]


def test_spec_roundtrip(frame: pd.DataFrame) -> None:
    spec = infer_spec(frame, label="clicked")
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_kind_override_and_errors(frame: pd.DataFrame) -> None:
    spec = infer_spec(frame, include=["x1", "user_id"], kinds={"user_id": "categorical"})
    assert [c.kind for c in spec.columns] == ["numeric", "categorical"]
    with pytest.raises(ConfigError, match="allowed: numeric, categorical, hash"):
        infer_spec(frame, kinds={"x1": "embedding"})
    with pytest.raises(ConfigError, match="nope"):
        infer_spec(frame, include=["nope"])
    with pytest.raises(ConfigError, match="hash needs an integer"):
        infer_spec(frame, include=["color"], kinds={"color": "hash"})


def test_infer_task_and_labels() -> None:
    assert infer_task(pd.Series([0, 1, 1])) == "binary"
    assert infer_task(pd.Series(["x", "y", "z"])) == "multiclass"
    assert infer_task(pd.Series([0, 1, 2, 3])) == "multiclass"
    assert infer_task(pd.Series(np.linspace(0, 1, 100))) == "regression"
    y, classes = encode_labels(pd.Series(["no", "yes", "no"]), "binary")
    assert y.tolist() == [0, 1, 0] and classes == ["no", "yes"]


def test_mostly_numeric_csv_column_with_a_few_strings_warns(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    age = [str(v) for v in rng.integers(18, 90, 200)]
    age[3], age[50], age[51] = "unknown", "n/a ", "unknown"
    path = tmp_path / "d.csv"
    pd.DataFrame({"age": age, "city": rng.choice(["Oslo", "Rome"], 200), "y": rng.integers(0, 2, 200)}).to_csv(
        path, index=False
    )
    df = pd.read_csv(path)
    assert not pd.api.types.is_numeric_dtype(df["age"])  # what pandas reads: strings
    with caplog.at_level("WARNING", logger="roost.training.preprocess"):
        infer_spec(df, label="y")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1, warned  # the all-string column 'city' is not flagged
    assert "'age'" in warned[0] and "'unknown'" in warned[0] and "'n/a '" in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="roost.training.preprocess"):
        infer_spec(df, label="y", kinds={"age": "categorical"})  # an explicit choice is not second-guessed
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_single_class_error_prints_the_plain_value() -> None:
    from roost.errors import RoostError
    from roost.training.data import check_label

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": np.array([1, 1, 1], dtype=np.int64)})
    with pytest.raises(RoostError) as e:
        check_label(df, "y", None)
    assert "single value (1)" in str(e.value.message) and "np." not in str(e.value)
