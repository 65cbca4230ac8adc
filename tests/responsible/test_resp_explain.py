"""Explanations: TreeSHAP equals shap's TreeExplainer, linear SHAP equals IG on a linear net, additivity vs ONNX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.errors import RoostError
from roost.responsible.attributions import explain


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier")
def test_tree_shap_equals_shap_tree_explainer(packages, eng: pd.DataFrame) -> None:
    import lightgbm as lgb
    import shap

    from roost.modelpkg import load
    from roost.responsible.native import lightgbm_matrix

    pred = load(packages["lightgbm"])
    rows = eng.iloc[-60:].reset_index(drop=True)
    e = explain(pred, rows, rows=60)
    assert e.method.startswith("TreeSHAP") and e.space == "log-odds"
    booster = lgb.Booster(model_file=str(packages["lightgbm"] / "native" / "model.txt"))
    te = shap.TreeExplainer(booster)
    ref = np.asarray(te.shap_values(lightgbm_matrix(pred, rows)))
    np.testing.assert_allclose(e.values, ref, atol=1e-6)
    np.testing.assert_allclose(e.base, te.expected_value, atol=1e-6)
    p = pred.predict(rows)  # additivity against the ONNX model's probabilities
    np.testing.assert_allclose(1 / (1 + np.exp(-(e.base + e.values.sum(axis=1)))), p, atol=1e-5)
    assert [f for f, _ in e.importance()][0] in pred.inputs


def test_linear_shap_is_exact_and_equals_integrated_gradients(packages, eng: pd.DataFrame) -> None:
    rows = eng.iloc[:40]
    lin = explain(packages["logreg"], rows, rows=40, method="linear")
    ig = explain(packages["logreg"], rows, rows=40, method="ig", steps=16)
    assert lin.method.startswith("linear SHAP") and lin.space == "log-odds"
    np.testing.assert_allclose(lin.values, ig.values, atol=1e-5)  # the path integral of a linear logit is exact
    np.testing.assert_allclose(lin.base + lin.values.sum(axis=1), lin.output, atol=1e-4)
    auto = explain(packages["logreg"], rows, rows=40)
    assert auto.method == lin.method


def test_integrated_gradients_completeness_on_an_mlp(packages, eng: pd.DataFrame) -> None:
    e = explain(packages["mlp"], eng.iloc[:30], rows=30, steps=64)
    assert e.method.startswith("Integrated Gradients")
    gap = float(e.notes[0].split(":")[-1])
    assert gap < 5e-3
    np.testing.assert_allclose(e.base + e.values.sum(axis=1), e.output, atol=5e-3)


def test_permutation_shap_is_efficient_on_any_package(packages, eng: pd.DataFrame) -> None:
    from roost.modelpkg import load

    rows = eng.iloc[:4]
    e = explain(packages["lightgbm"], rows, rows=4, background=20, method="permutation")
    assert e.space == "probability" and e.values.shape == (4, len(load(packages["lightgbm"]).inputs))
    np.testing.assert_allclose(e.base + e.values.sum(axis=1), load(packages["lightgbm"]).predict(rows), atol=1e-6)
    d = e.to_dict(rows=2)
    assert len(d["rows"]) == 2 and d["importance"][0]["mean_abs"] >= d["importance"][-1]["mean_abs"]


def test_bad_input(packages, eng: pd.DataFrame) -> None:
    with pytest.raises(RoostError, match="lacks the model's input"):
        explain(packages["lightgbm"], eng.drop(columns=["price"]))
    with pytest.raises(RoostError, match="unknown explanation method"):
        explain(packages["lightgbm"], eng, method="lime")
    with pytest.raises(RoostError, match="no rows"):
        explain(packages["lightgbm"], eng.iloc[:0])
