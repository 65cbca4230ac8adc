"""`roost train`'s LightGBM package built with numpy from the booster's text (model_import.fasttrees, categorical
splits included) scores exactly as the onnxmltools-built package did (<= 1e-6) and as the booster (<= 1e-5) on raw
held-out rows with NaN, missing and unseen categories and unseen ids: binary, multiclass, regression, early-stopped
models; onnxmltools is not called for them, and the checks catch a broken leaf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roost.training.lgbm import LightGBMModel

COLORS = [f"c{i}" for i in range(14)]  # enough categories for splits on sets of several of them


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Numeric columns (NaN in two), text categories (some missing), an id column (hashed) and three labels."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(5, 3, size=n),
            "x3": rng.normal(size=n),
            "color": rng.choice(COLORS, n),
            "shape": rng.choice(["round", "square", "flat"], n),
            "user_id": rng.integers(0, 40, n),
        }
    )
    color_effect = df["color"].map(dict(zip(COLORS, rng.normal(0, 1.2, len(COLORS)))))
    logit = 1.2 * df["x1"] - 0.3 * (df["x2"] - 5) + color_effect + 0.7 * (df["shape"] == "flat")
    df.loc[rng.random(n) < 0.1, "x2"] = np.nan
    df.loc[rng.random(n) < 0.08, "x3"] = np.nan
    df.loc[rng.random(n) < 0.05, "color"] = None
    df["clicked"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    df["kind"] = np.where(logit > 0.8, "high", np.where(logit > -0.6, "mid", "low"))
    df["score"] = logit * 10 + 100 + rng.normal(size=n)
    return df


FEATURES = ["x1", "x2", "x3", "color", "shape", "user_id"]
OUT = {"clicked": "probability", "kind": "probabilities", "score": "prediction"}
CASES = {  # name: (label, parameters)
    "binary, early-stopped": ("clicked", {"n_estimators": 400, "learning_rate": 0.3, "early_stopping_rounds": 5}),
    "multiclass, early-stopped": ("kind", {"n_estimators": 200, "learning_rate": 0.3, "early_stopping_rounds": 5}),
    "regression, early-stopped": ("score", {"n_estimators": 400, "learning_rate": 0.3, "early_stopping_rounds": 5}),
    "binary, every round": ("clicked", {"n_estimators": 60, "early_stopping_rounds": 0}),
    "regression, small-table settings": ("score", {"n_estimators": 80, "num_leaves": 7, "colsample_bytree": 0.5}),
}


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows with unseen categories and ids, NaN and missing text)."""
    held = _frame(400, seed=1)
    held.loc[::6, "color"] = "ultraviolet"
    held.loc[::7, "user_id"] = 10_000_019
    held.loc[::5, "x1"] = np.nan
    held.loc[:20, "x2"] = 0.0
    return _frame(1500, seed=0), held


@pytest.fixture(scope="module")
def fitted(tables) -> dict[str, LightGBMModel]:
    train, _ = tables
    out = {}
    for name, (label, params) in CASES.items():
        m = LightGBMModel(n_jobs=1, **params)
        m.fit(train[FEATURES].iloc[:1200], train[label].iloc[:1200], train[FEATURES].iloc[1200:],
              train[label].iloc[1200:])  # fmt: skip
        out[name] = m
    return out


def _package(m: Any, directory: Path, sample: pd.DataFrame, monkeypatch, path: str) -> Path:
    """m's package through `path`: "fast" (onnxmltools refused) or "onnxmltools" (the numpy build declines)."""
    import onnxmltools

    import roost.model_import.fasttrees as fasttrees

    with monkeypatch.context() as mp:
        if path == "fast":

            def refuse(*_a: Any, **_k: Any) -> None:
                raise AssertionError("onnxmltools was called for a model the numpy build covers")

            mp.setattr(onnxmltools, "convert_lightgbm", refuse)
        else:
            mp.setattr(fasttrees, "lightgbm_graph", lambda *_a, **_k: None)
        m.save_package(directory, sample)
    return directory


def _scores(pkg: Path, m: Any, rows: pd.DataFrame, out: str) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run([out], m.spec_.raw_inputs(rows))[0], dtype=np.float64)


def _booster(m: LightGBMModel, rows: pd.DataFrame) -> np.ndarray:
    """LightGBM's own scores on the matrix it was trained on (the wrapper: up to the best iteration)."""
    M = m.matrix(rows)
    if m.task_ == "regression":
        return np.asarray(m.model_.predict(M), dtype=np.float64)
    P = np.asarray(m.model_.predict_proba(M), dtype=np.float64)
    return P[:, 1] if m.task_ == "binary" else P


def _check(fast: np.ndarray, reference: np.ndarray, booster: np.ndarray, name: str) -> None:
    assert fast.shape == reference.shape == booster.shape, name
    assert np.max(np.abs(fast - reference)) <= 1e-6, f"{name}: differs from the onnxmltools-built package"
    scale = np.maximum(1.0, np.abs(booster))  # regression targets ~100: relative beyond 1, as the package check
    assert np.max(np.abs(fast - booster) / scale) <= 1e-5, f"{name}: differs from the booster"


def _branch_eq_nodes(pkg: Path) -> int:
    import onnx

    model = onnx.load(str(pkg / "model.onnx"))
    return sum(
        sum(1 for s in a.strings if s == b"BRANCH_EQ")
        for n in model.graph.node
        for a in n.attribute
        if a.name == "nodes_modes"
    )


def _categorical_splits(m: LightGBMModel) -> int:
    text = m.model_.booster_.model_to_string()
    return sum(
        sum(int(v) & 1 for v in ln.split("=", 1)[1].split())
        for ln in text.splitlines()
        if ln.startswith("decision_type=")
    )


@pytest.mark.parametrize("name", list(CASES))
def test_fast_package_scores_as_onnxmltools_package_and_booster(name, fitted, tables, tmp_path, monkeypatch):
    m = fitted[name]
    label, params = CASES[name]
    _, held = tables
    X = held[FEATURES]
    if params.get("early_stopping_rounds"):
        assert m.best_iteration_ < params["n_estimators"], f"{name}: did not stop early"
    fast = _package(m, tmp_path / "fast", X.head(100), monkeypatch, "fast")
    ref = _package(m, tmp_path / "onnxmltools", X.head(100), monkeypatch, "onnxmltools")
    cats = _categorical_splits(m)
    assert cats > 0, f"{name}: no categorical split to check"
    assert _branch_eq_nodes(fast) > cats, f"{name}: no split on a set of several categories"
    out = OUT[label]
    _check(_scores(fast, m, X, out), _scores(ref, m, X, out), _booster(m, X), name)


def test_the_checks_catch_a_broken_leaf(fitted, tables, tmp_path, monkeypatch):
    """The same checks fail when the numpy build is wrong: the weight of one leaf (the first tree's leaf that the first
    held-out row reaches) moved by 0.01."""
    import roost.model_import.fasttrees as fasttrees

    m = fitted["binary, every round"]
    _, held = tables
    X = held[FEATURES]
    booster = m.model_.booster_
    leaf = int(booster.predict(m.matrix(X.head(1)), pred_leaf=True)[0, 0])
    node = int(booster.dump_model()["tree_info"][0]["num_leaves"]) - 1 + leaf  # fasttrees: leaf k is node L-1+k
    real = fasttrees.lightgbm_graph

    def broken(*a: Any, **k: Any) -> Any:
        onx = real(*a, **k)
        attrs = {x.name: x for x in onx.graph.node[0].attribute}
        hits = [i for i, (t, n) in enumerate(zip(attrs["class_treeids"].ints, attrs["class_nodeids"].ints))
                if (t, n) == (0, node)]  # fmt: skip
        assert len(hits) == 1
        attrs["class_weights"].floats[hits[0]] += 0.01
        return onx

    ref = _package(m, tmp_path / "onnxmltools", X.head(100), monkeypatch, "onnxmltools")
    monkeypatch.setattr(fasttrees, "lightgbm_graph", broken)
    bad = _package(m, tmp_path / "broken", X.head(100), monkeypatch, "fast")
    got = _scores(bad, m, X, "probability")
    with pytest.raises(AssertionError, match="differs from the onnxmltools-built package"):
        _check(got, _scores(ref, m, X, "probability"), _booster(m, X), "broken")
    with pytest.raises(AssertionError, match="differs from the booster"):
        _check(got, got, _booster(m, X), "broken")


@pytest.mark.parametrize("label", ["kind", "score"])
def test_auto_blend_of_lightgbm_candidates_is_exported_without_onnxmltools(label, tables, tmp_path, monkeypatch):
    """auto's LightGBM children (`lightgbm` with the small-table settings, `lightgbm_deep`, `lightgbm_defaults`) in
    one blend: its graph is built without onnxmltools and scores as the onnxmltools-built blend and the blend's own
    average of the boosters."""
    from roost.training.auto_candidates import VARIANTS
    from roost.training.ensemble import Blend
    from roost.training.lgbm import candidate_params

    train, held = tables
    X = held[FEATURES]
    members = []
    for name, params in [
        ("lightgbm", {**candidate_params(1200, len(FEATURES)), "n_estimators": 300}),
        ("lightgbm_deep", {**VARIANTS["lightgbm_deep"][1], "n_estimators": 300}),
        ("lightgbm_defaults", VARIANTS["lightgbm_defaults"][1]),
    ]:
        m = LightGBMModel(n_jobs=1, **params)
        m.fit(train[FEATURES].iloc[:1200], train[label].iloc[:1200], train[FEATURES].iloc[1200:],
              train[label].iloc[1200:], spec=members[0][1].spec_ if members else None)  # fmt: skip
        assert _categorical_splits(m) > 0, name
        members.append((name, m))
    blend = Blend(members, [0.5, 0.3, 0.2])
    fast = _package(blend, tmp_path / "fast", X.head(100), monkeypatch, "fast")
    ref = _package(blend, tmp_path / "onnxmltools", X.head(100), monkeypatch, "onnxmltools")
    out = "probabilities" if label == "kind" else "prediction"
    expected = sum(w * _booster(m, X) for (_, m), w in zip(blend.members, blend.weights))
    _check(_scores(fast, blend, X, out), _scores(ref, blend, X, out), expected, f"blend of {label}")
