"""roost.log_model on real models trained here: package, registry, ONNX Runtime equals the native model."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import roost
from roost.errors import RoostError

NAMES = ["logreg", "column_transformer", "random_forest", "gradient_boosting", "lightgbm", "xgboost", "torch_mlp"]


@pytest.mark.parametrize("name", NAMES)
def test_log_model_roundtrip_equals_native(ws, fitted, name):
    model, train, held, native = fitted[name]
    v = roost.log_model(
        model, name=name.replace("_", "-"), sample_input=train.head(100), task="binary" if name == "torch_mlp" else None
    )
    assert v.version == 1 and v.meta["task"] == "binary"
    assert v.meta["parity_max_abs_diff"] is not None and v.meta["parity_max_abs_diff"] <= 1e-4
    pred = roost.load_model(f"{name.replace('_', '-')}/1")
    got = pred.predict(held)
    np.testing.assert_allclose(got, native(held), atol=1e-5)
    sig = json.loads((Path(v.local_path) / "signature.json").read_text())
    assert [i["name"] for i in sig["inputs"]] == list(train.columns)
    if name == "column_transformer":
        assert {i["name"]: i["dtype"] for i in sig["inputs"]}["size"] == "string"
    run = roost.get_run(v.run_id)
    assert run["status"] == "FINISHED"


def test_log_model_inside_active_run_uses_it(ws, fitted):
    model, train, held, native = fitted["logreg"]
    with roost.start_run(name="mine") as run:
        v = roost.log_model(model, name="churn", sample_input=train.head(50))
    assert v.run_id == run.id
    assert len(roost.search_runs()) == 1


def test_raw_onnx_file(ws, fitted, tmp_path):
    from roost.model_import.log import build_package

    model, train, held, native = fitted["random_forest"]
    build_package(model, tmp_path / "pkg", train.head(50))
    raw = (tmp_path / "pkg" / "model.onnx").read_bytes()
    v = roost.log_model(raw, name="rf-onnx")
    assert v.meta["framework"] == "onnx" and v.meta["task"] == "binary"
    np.testing.assert_allclose(roost.load_model("rf-onnx/1").predict(held), native(held), atol=1e-5)


def test_unsupported_step_is_named_and_nothing_registered(ws, cancer):
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    class Squash(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return np.tanh(X)

    X, y, _ = cancer
    m = Pipeline([("squash", Squash()), ("lr", LogisticRegression(max_iter=2000))]).fit(X, y)
    with pytest.raises(RoostError) as e:
        roost.log_model(m, name="bad", sample_input=X.head(10))
    assert "'squash'" in e.value.message and "Squash" in e.value.message
    assert "update_registered_converter" in e.value.hint
    assert roost.list_models() == [] and roost.search_runs() == []


@pytest.mark.parametrize("make", ["ridge", "linear_svc"])
def test_classifier_without_probabilities_is_refused_with_a_hint(ws, cancer, make):
    """A classifier with no predict_proba has no probability output for the spec: a RoostError naming it, not an
    ONNX Runtime failure; nothing registered."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.svm import LinearSVC

    X, y, _ = cancer
    m = (RidgeClassifier() if make == "ridge" else LinearSVC()).fit(X, y)
    assert not hasattr(m, "predict_proba")
    with pytest.raises(RoostError) as e:
        roost.log_model(m, name="noproba", sample_input=X.head(10))
    assert "predict_proba" in e.value.message and type(m).__name__ in e.value.message
    assert "CalibratedClassifierCV" in e.value.hint
    assert roost.list_models() == [] and roost.search_runs() == []


def test_sample_columns_must_match(ws, fitted):
    model, train, held, native = fitted["logreg"]
    with pytest.raises(RoostError) as e:
        roost.log_model(model, name="x", sample_input=train.drop(columns=["mean radius"]).head(10))
    assert "mean radius" in e.value.message
    assert roost.list_models() == []


def test_parity_failure_blocks_unless_allowed(ws, fitted, monkeypatch):
    """Corrupt the native side so parity fails: the import is refused; --allow-mismatch keeps the figure."""
    from roost.model_import import convert as conv_mod

    model, train, held, native = fitted["logreg"]
    real = conv_mod.convert_sklearn

    def skewed(m, s):
        c = real(m, s)
        base = c.native
        c.native = lambda d: base(d) + 0.01
        return c

    monkeypatch.setattr(conv_mod, "convert_sklearn", skewed)
    with pytest.raises(RoostError) as e:
        roost.log_model(model, name="skew", sample_input=train.head(20))
    assert "differs from the native model by 0.01" in e.value.message
    assert roost.list_models() == []
    v = roost.log_model(model, name="skew", sample_input=train.head(20), allow_mismatch=True)
    assert abs(v.meta["parity_max_abs_diff"] - 0.01) < 1e-6


def test_pickle_needs_trust_and_corrupt_files_fail_cleanly(ws, fitted, tmp_path, cli):
    model, train, held, native = fitted["logreg"]
    pkl = tmp_path / "m.pkl"
    pkl.write_bytes(pickle.dumps(model))
    sample = tmp_path / "sample.parquet"
    train.head(50).to_parquet(sample)
    code, out, err = cli("models", "import", str(pkl), "--name", "p", "--sample", str(sample))
    assert code == 2 and "--trust-pickle" in err
    code, out, err = cli("models", "import", str(pkl), "--name", "p", "--sample", str(sample), "--trust-pickle")
    assert code == 0, err
    assert roost.resolve_model("p/1").meta["parity_max_abs_diff"] <= 1e-4
    bad = tmp_path / "broken.onnx"
    bad.write_bytes((tmp_path / "m.pkl").read_bytes()[:100])
    code, out, err = cli("models", "import", str(bad), "--name", "broken")
    assert code == 2 and "not a valid ONNX model" in err
    trunc = tmp_path / "t.pkl"
    trunc.write_bytes(pkl.read_bytes()[:50])
    code, out, err = cli("models", "import", str(trunc), "--name", "t", "--sample", str(sample), "--trust-pickle")
    assert code == 2 and "cannot unpickle" in err
    assert [m["name"] for m in roost.list_models()] == ["p"]


def test_import_native_files(ws, fitted, tmp_path, cli):
    """LightGBM text model, XGBoost JSON model and a TorchScript file, imported from disk."""
    import torch

    sample = tmp_path / "sample.parquet"
    _, train, held, _ = fitted["lightgbm"]
    train.head(80).to_parquet(sample)
    lgbm = fitted["lightgbm"][0]
    lgbm.booster_.save_model(str(tmp_path / "m.txt"))
    assert cli("models", "import", str(tmp_path / "m.txt"), "--name", "lgb", "--sample", str(sample))[0] == 0
    np.testing.assert_allclose(roost.load_model("lgb/1").predict(held), fitted["lightgbm"][3](held), atol=1e-5)
    xg = fitted["xgboost"][0]
    xg.save_model(str(tmp_path / "m.json"))
    code, _, err = cli("models", "import", str(tmp_path / "m.json"), "--name", "xgb", "--sample", str(sample))
    assert code == 0, err
    np.testing.assert_allclose(roost.load_model("xgb/1").predict(held), fitted["xgboost"][3](held), atol=1e-5)
    net = fitted["torch_mlp"][0]
    torch.jit.save(torch.jit.trace(net, torch.zeros(2, 30)), str(tmp_path / "m.pt"))
    code, _, err = cli(
        "models", "import", str(tmp_path / "m.pt"), "--name", "ts", "--sample", str(sample), "--task", "binary"
    )
    assert code == 0, err
    np.testing.assert_allclose(roost.load_model("ts/1").predict(held), fitted["torch_mlp"][3](held), atol=1e-5)
