"""scikit-learn classifiers are converted with skl2onnx's defaults and the ZipMap taken off (cheaper than its
zipmap=False option): the package's probabilities equal skl2onnx's own zipmap=False graph and the native model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


def _zipmap_false_probabilities(model: Any, final: Any, types: list[Any], feed: dict[str, Any]) -> np.ndarray:
    """The reference: skl2onnx's conversion with its zipmap=False option, run by ONNX Runtime."""
    import onnxruntime as ort
    from skl2onnx import convert_sklearn

    onx = convert_sklearn(model, initial_types=types, options={id(final): {"zipmap": False}},
                          target_opset={"": 17, "ai.onnx.ml": 3})  # fmt: skip
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(["probabilities"], feed)[0])


def _cases() -> list[tuple[str, Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    mixed = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])),
        ("clf", LogisticRegression(max_iter=500)),
    ])  # fmt: skip
    return [
        ("forest, binary", RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0)),
        ("logistic, 3 text classes", LogisticRegression(max_iter=500)),
        ("pipeline with a text column", mixed),
    ]


@pytest.mark.parametrize("case", range(3))
def test_probabilities_equal_skl2onnx_zipmap_false_and_native(case: int, tmp_path: Path) -> None:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.pipeline import Pipeline

    from roost.model_import.log import build_package
    from roost.modelpkg import load

    rng = np.random.default_rng(case)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    name, model = _cases()[case]
    if name.startswith("forest"):
        y = (df["a"] + df["b"] > 0).astype(int)
        X = df[["a", "b"]]
    elif name.startswith("logistic"):
        y = np.array(["lo", "mid", "hi"])[np.digitize(df["a"], [-0.5, 0.5])]
        X = df[["a", "b"]]
    else:
        y = ((df["c"] == "x") ^ (df["a"] > 0)).astype(int)
        X = df
    model.fit(X, y)
    meta = build_package(model, tmp_path / "pkg", sample_input=X.iloc[:50])
    pred = load(tmp_path / "pkg")
    got = pred.run({c: X[c] for c in pred.inputs}, [pred.outputs[0]])[pred.outputs[0]]
    native = model.predict_proba(X)
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if name.startswith("pipeline"):
        types = [
            ("a", FloatTensorType([None, 1])),
            ("b", FloatTensorType([None, 1])),
            ("c", StringTensorType([None, 1])),
        ]
        feed = {"a": X[["a"]].to_numpy(np.float32), "b": X[["b"]].to_numpy(np.float32), "c": X[["c"]].to_numpy()}
    else:
        types = [("X", FloatTensorType([None, 2]))]
        feed = {"X": X.to_numpy(np.float32)}
    reference = _zipmap_false_probabilities(model, final, types, feed)
    if meta["task"] == "binary":
        reference, native = reference[:, 1], native[:, 1]
    np.testing.assert_allclose(got, reference, atol=1e-6)
    np.testing.assert_allclose(got, native, atol=1e-5)
