"""LightGBM and XGBoost ensembles built with numpy from the library's own dump (roost.model_import.fasttrees):
on random data with missing values they compute what onnxmltools' graph computes and what the native model predicts
(<= 1e-5); what the fast path does not cover gives None (onnxmltools converts it), and a package of a covered model
is built without onnxmltools at all."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

F = 6


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    """Train/test matrices with NaN (and a test column that is all NaN), binary/3-class/regression targets."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(700, F))
    X[rng.random(X.shape) < 0.1] = np.nan
    clean = rng.normal(size=(700, F))  # no NaN while training: LightGBM's missing type "none" (NaN read as 0.0)
    test = rng.normal(size=(500, F))
    test[rng.random(test.shape) < 0.2] = np.nan
    test[:, 0] = np.nan
    test[:50] = 0.0  # exact zeros
    z = np.nan_to_num(X)
    return {
        "X": X,
        "clean": clean,
        "test": test,
        "binary": (z[:, 0] + z[:, 1] > 0).astype(int),
        "multi": np.digitize(z[:, 2] - z[:, 3], [-0.6, 0.6]),
        "reg": 0.5 * z[:, 3] - z[:, 4] + rng.normal(scale=0.1, size=len(z)),
    }


def _covered(data: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """(name, framework, fitted model, native scores on test rows: probabilities or predictions)."""
    import lightgbm as lgb
    import xgboost as xgb

    X, clean, test = data["X"], data["clean"], data["test"]
    yb, ym, yr = data["binary"], data["multi"], data["reg"]
    small = {"n_estimators": 25, "verbose": -1, "min_child_samples": 10}
    out: list[tuple[str, str, Any, Any]] = []

    def sk(name: str, fw: str, m: Any) -> None:
        out.append((name, fw, m, m.predict_proba(test) if hasattr(m, "predict_proba") else m.predict(test)))

    sk("lgb binary", "lightgbm", lgb.LGBMClassifier(**small).fit(X, yb))
    sk("lgb binary, no NaN in training", "lightgbm", lgb.LGBMClassifier(**small).fit(clean, yb))
    sk("lgb 3 classes", "lightgbm", lgb.LGBMClassifier(**small).fit(X, ym))
    sk("lgb regression", "lightgbm", lgb.LGBMRegressor(**small).fit(X, yr))
    sk("lgb l1, no NaN in training", "lightgbm", lgb.LGBMRegressor(objective="l1", **small).fit(clean, yr))
    sk("lgb single-leaf trees", "lightgbm", lgb.LGBMRegressor(n_estimators=5, min_child_samples=600, verbose=-1)
       .fit(X, yr))  # fmt: skip
    es = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.5, verbose=-1, min_child_samples=10)
    sk("lgb early stopping", "lightgbm", es.fit(X[:500], yb[:500], eval_set=[(X[500:], yb[500:])],
                                               callbacks=[lgb.early_stopping(3, verbose=False)]))  # fmt: skip
    booster = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(X, ym), 10)
    out.append(("lgb.train multiclass Booster", "lightgbm", booster, booster.predict(test)))
    sk("xgb binary", "xgboost", xgb.XGBClassifier(n_estimators=25, max_depth=4).fit(X, yb))
    sk("xgb 3 classes", "xgboost", xgb.XGBClassifier(n_estimators=15, max_depth=3).fit(X, ym))
    sk("xgb regression", "xgboost", xgb.XGBRegressor(n_estimators=25, max_depth=4).fit(X, yr))
    sk("xgb absolute error", "xgboost", xgb.XGBRegressor(n_estimators=10, objective="reg:absoluteerror").fit(X, yr))
    xes = xgb.XGBClassifier(n_estimators=300, learning_rate=0.5, max_depth=3, early_stopping_rounds=3)
    sk("xgb early stopping", "xgboost", xes.fit(X[:500], yb[:500], eval_set=[(X[500:], yb[500:])], verbose=False))
    xb = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(X, yr), 20)
    out.append(("xgb.train Booster", "xgboost", xb, xb.predict(xgb.DMatrix(test))))
    return out


def _scores(onx: Any, X: np.ndarray) -> np.ndarray:
    """ONNX Runtime's probabilities (classifiers) or predictions [N] (regressors) of a graph with input X."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    want = "probabilities" if "probabilities" in names else names[0]
    got = np.asarray(sess.run([want], {"X": X.astype(np.float32)})[0])
    return got if want == "probabilities" else got.reshape(-1)


def test_fast_graph_equals_onnxmltools_and_the_native_model(data):
    from onnxmltools.convert.common.data_types import FloatTensorType

    from roost.model_import.boosting import _onnxmltools
    from roost.model_import.fasttrees import fast_trees

    test = data["test"]
    for name, fw, model, native in _covered(data):
        fast = fast_trees(model, fw, F)
        assert fast is not None, f"{name}: not covered by the fast path"
        reference = _onnxmltools(model, fw, [("X", FloatTensorType([None, F]))])
        got, ref = _scores(fast, test), _scores(reference, test)
        native = np.asarray(native, dtype=np.float64)
        if native.ndim == 1 and got.ndim == 2:  # a binary Booster's predict: P(class 1)
            native = np.column_stack([1 - native, native])
        assert got.shape == ref.shape == native.shape, name
        assert np.max(np.abs(got - ref)) <= 1e-6, f"{name}: differs from onnxmltools' graph"
        assert np.max(np.abs(got - native)) <= 1e-5, f"{name}: differs from the native model"


def test_what_the_fast_path_does_not_cover_goes_to_onnxmltools(data):
    import lightgbm as lgb
    import pandas as pd
    import xgboost as xgb

    from roost.model_import.fasttrees import fast_trees

    X, yb, yr = data["X"], data["binary"], data["reg"]
    small = {"n_estimators": 10, "verbose": -1}
    cats = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).fillna(0.0)
    cats["k"] = pd.Categorical(np.where(yb == 1, "x", np.where(X[:, 4] > 0, "y", "z")))
    xcats = cats.copy()
    not_covered = [
        (
            "categorical splits",
            "lightgbm",
            lgb.LGBMClassifier(min_data_per_group=5, cat_smooth=1, **small).fit(cats, yb),
            4,
        ),  # fmt: skip
        ("zero as missing", "lightgbm", lgb.LGBMRegressor(zero_as_missing=True, **small).fit(X, yr), F),
        (
            "random forest mode",
            "lightgbm",
            lgb.LGBMRegressor(boosting_type="rf", bagging_freq=1, bagging_fraction=0.5, **small).fit(X, yr),
            F,
        ),
        ("poisson (exp output)", "lightgbm", lgb.LGBMRegressor(objective="poisson", **small).fit(X, np.abs(yr)), F),
        (
            "xgb categorical",
            "xgboost",
            xgb.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist").fit(xcats, yb),
            4,
        ),
        ("xgb missing=0", "xgboost", xgb.XGBRegressor(n_estimators=5, missing=0.0).fit(X, yr), F),
        ("xgb poisson", "xgboost", xgb.XGBRegressor(n_estimators=5, objective="count:poisson").fit(X, np.abs(yr)), F),
        ("xgb logitraw", "xgboost", xgb.XGBClassifier(n_estimators=5, objective="binary:logitraw").fit(X, yb), F),
        ("wrong width", "lightgbm", lgb.LGBMRegressor(**small).fit(X, yr), F + 1),
    ]
    for name, fw, model, width in not_covered:
        assert fast_trees(model, fw, width) is None, f"{name}: the fast path must leave it to onnxmltools"


def test_early_stopped_bare_xgboost_booster_is_left_to_onnxmltools(data):
    import xgboost as xgb

    from roost.model_import.fasttrees import fast_trees

    X, yb = data["X"], data["binary"]
    dtrain, dvalid = xgb.DMatrix(X[:500], yb[:500]), xgb.DMatrix(X[500:], yb[500:])
    b = xgb.train({"objective": "binary:logistic", "eta": 0.5}, dtrain, 200, evals=[(dvalid, "v")],
                  early_stopping_rounds=3, verbose_eval=False)  # fmt: skip
    assert b.attr("best_iteration") is not None
    assert fast_trees(b, "xgboost", F) is None


def test_a_covered_model_is_packaged_without_onnxmltools(data, tmp_path, monkeypatch):
    import lightgbm as lgb
    import onnxmltools
    import xgboost as xgb

    from roost.model_import.log import build_package
    from roost.modelpkg import load

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("onnxmltools was called")

    monkeypatch.setattr(onnxmltools, "convert_lightgbm", refuse)
    monkeypatch.setattr(onnxmltools, "convert_xgboost", refuse)
    X, ym, test = data["X"], data["multi"], data["test"]
    for i, model in enumerate([
        lgb.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, ym),
        xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, ym),
    ]):  # fmt: skip
        meta = build_package(model, tmp_path / f"m{i}", sample_input=X[:50])
        assert meta["parity_max_abs_diff"] <= 1e-5
        pred = load(tmp_path / f"m{i}")
        got = pred.run({c: test[:, j] for j, c in enumerate(pred.inputs)}, ["probabilities"])["probabilities"]
        assert np.max(np.abs(got - model.predict_proba(test))) <= 1e-5


def _skl2onnx_scores(model: Any, X: np.ndarray) -> np.ndarray:
    """skl2onnx's own graph of a forest (probabilities, or predictions [N]), run by ONNX Runtime."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    clf = hasattr(model, "predict_proba")
    options = {id(model): {"zipmap": False}} if clf else None
    onx = convert_sklearn(model, initial_types=[("X", FloatTensorType([None, F]))], options=options,
                          target_opset={"": 17, "ai.onnx.ml": 3})  # fmt: skip
    return _scores(onx, X)


def test_forest_graph_equals_skl2onnx_and_the_native_model(data):
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    from roost.model_import.fasttrees import fast_trees

    clean, yb, ym, yr = data["clean"], data["binary"], data["multi"], data["reg"]
    test = np.nan_to_num(data["test"], nan=0.25)
    test[:40] = clean[:40]  # rows on the training thresholds' sides exactly
    kw = {"n_estimators": 8, "max_depth": 6, "random_state": 0}
    cases = [
        ("forest binary", RandomForestClassifier(**kw).fit(clean, yb)),
        ("forest 3 text classes", RandomForestClassifier(**kw).fit(clean, np.array(["a", "b", "c"])[ym])),
        ("forest regression", RandomForestRegressor(**kw).fit(clean, yr)),
        ("extra trees binary", ExtraTreesClassifier(**kw).fit(clean, yb)),
        ("extra trees regression", ExtraTreesRegressor(**kw).fit(clean, yr)),
        ("deep forest, 3 classes", RandomForestClassifier(n_estimators=3, random_state=1).fit(clean, ym)),
    ]
    for name, model in cases:
        fast = fast_trees(model, "sklearn", F)
        assert fast is not None, name
        native = model.predict_proba(test) if hasattr(model, "predict_proba") else model.predict(test)
        got, ref = _scores(fast, test), _skl2onnx_scores(model, test)
        assert np.max(np.abs(got - ref)) <= 1e-6, f"{name}: differs from skl2onnx's graph"
        assert np.max(np.abs(got - native)) <= 1e-5, f"{name}: differs from the native model"


def test_forest_trained_with_missing_values_sends_nan_where_scikit_learn_does(data):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from roost.model_import.fasttrees import fast_trees

    X, yb, yr, test = data["X"], data["binary"], data["reg"], data["test"]
    for model in (RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X, yb),
                  RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0).fit(X, yr)):  # fmt: skip
        fast = fast_trees(model, "sklearn", F)
        native = model.predict_proba(test) if hasattr(model, "predict_proba") else model.predict(test)
        assert np.max(np.abs(_scores(fast, test) - native)) <= 1e-5


def test_other_scikit_learn_models_go_to_skl2onnx(data):
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from roost.model_import.fasttrees import fast_trees

    clean, yb, yr = data["clean"], data["binary"], data["reg"]
    two = np.column_stack([yr, -yr])
    for name, model in [
        ("gradient boosting", GradientBoostingClassifier(n_estimators=3).fit(clean, yb)),
        ("pipeline", Pipeline([("s", StandardScaler()), ("f", RandomForestClassifier(n_estimators=2))]).fit(clean, yb)),
        ("two outputs", RandomForestRegressor(n_estimators=2).fit(clean, two)),
    ]:
        assert fast_trees(model, "sklearn", F) is None, name


def test_a_forest_is_packaged_without_skl2onnx(data, tmp_path, monkeypatch):
    import skl2onnx
    from sklearn.ensemble import RandomForestClassifier

    from roost.model_import.log import build_package
    from roost.modelpkg import load

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("skl2onnx was called")

    monkeypatch.setattr(skl2onnx, "convert_sklearn", refuse)
    X, ym, test = data["X"], data["multi"], data["test"]
    model = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(X, ym)
    meta = build_package(model, tmp_path / "m", sample_input=X[:50])
    assert meta["parity_max_abs_diff"] <= 1e-5
    pred = load(tmp_path / "m")
    got = pred.run({c: test[:, j] for j, c in enumerate(pred.inputs)}, ["probabilities"])["probabilities"]
    assert np.max(np.abs(got - model.predict_proba(test))) <= 1e-5


def test_a_forest_trained_with_missing_values_can_be_packaged(data, tmp_path):
    """skl2onnx's graph ignores the forest's missing-value directions (the parity check refused such a forest: 0.807
    off on this sample, no package); the fast path keeps them."""
    from sklearn.ensemble import RandomForestClassifier

    from roost.model_import.log import build_package

    X, yb = data["X"], data["binary"]
    model = RandomForestClassifier(n_estimators=10, max_depth=6, random_state=0).fit(X, yb)
    meta = build_package(model, tmp_path / "m", sample_input=X[:100])
    assert meta["parity_max_abs_diff"] <= 1e-5


def test_categorical_splits_when_asked_equal_onnxmltools_and_the_native_model(data):
    """categorical_splits=True (roost train's category indices): BRANCH_EQ chains as onnxmltools writes them, on rows
    with NaN everywhere (the category column included: vs onnxmltools), unseen and negative categories; the native
    model agrees on the rows whose categories are whole numbers (NaN in a category is read otherwise by LightGBM)."""
    import lightgbm as lgb
    from onnxmltools.convert.common.data_types import FloatTensorType

    from roost.model_import.boosting import _onnxmltools
    from roost.model_import.fasttrees import lightgbm_graph

    rng = np.random.default_rng(3)
    X, test = data["X"].copy(), data["test"].copy()
    X[:, 2] = rng.integers(0, 30, len(X))  # 30 categories: splits on sets of several
    X[:, 5] = rng.integers(0, 4, len(X))
    z = np.nan_to_num(X)
    yb = ((X[:, 2] % 3 == 0) + (X[:, 5] == 1) + z[:, 0] > 0.8).astype(int)
    test[:, 2] = rng.integers(-2, 35, len(test))  # unseen (30..34) and negative categories
    test[:, 5] = rng.integers(0, 5, len(test)).astype(float)
    nan_cats = test.copy()
    nan_cats[::4, 2] = np.nan
    kw = {"verbose": -1, "min_data_per_group": 5, "cat_smooth": 1.0, "cat_l2": 1.0}
    cases = [
        ("binary", lgb.LGBMClassifier(n_estimators=30, **kw).fit(X, yb, categorical_feature=[2, 5])),
        (
            "3 classes",
            lgb.LGBMClassifier(n_estimators=10, **kw).fit(X, (X[:, 2] % 3).astype(int), categorical_feature=[2, 5]),
        ),
        (
            "regression",
            lgb.LGBMRegressor(n_estimators=30, **kw).fit(X, data["reg"] + (X[:, 2] % 4), categorical_feature=[2, 5]),
        ),
    ]
    for name, model in cases:
        assert lightgbm_graph(model, F) is None, f"{name}: categorical splits are built only when asked for"
        fast = lightgbm_graph(model, F, categorical_splits=True)
        assert fast is not None, name
        modes = list(next(a for a in fast.graph.node[0].attribute if a.name == "nodes_modes").strings)
        text = model.booster_.model_to_string().splitlines()
        n_cat = sum(int(ln.split("=")[1]) for ln in text if ln.startswith("num_cat="))  # categorical splits
        assert modes.count(b"BRANCH_EQ") > n_cat > 0, f"{name}: no split on a set of several categories"
        reference = _onnxmltools(model, "lightgbm", [("X", FloatTensorType([None, F]))])
        got, ref = _scores(fast, nan_cats), _scores(reference, nan_cats)
        assert np.max(np.abs(got - ref)) <= 1e-6, f"{name}: differs from onnxmltools' graph"
        native = model.predict_proba(test) if hasattr(model, "predict_proba") else model.predict(test)
        assert np.max(np.abs(_scores(fast, test) - native)) <= 1e-5, f"{name}: differs from the native model"
