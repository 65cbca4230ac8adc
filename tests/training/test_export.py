"""Every model: ONNX Runtime on raw held-out columns equals the native (PyTorch / LightGBM) output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roost.training.models import make_model

FEATURES = ["x1", "x2", "color", "user_id", "user_seg", "item_id", "item_cat"]


def _fit_export(name: str, label: str, frame: pd.DataFrame, heldout: pd.DataFrame, tmp: Path, **params):
    m = make_model(name, **params)
    X = frame[FEATURES]
    m.fit(X.iloc[:480], frame[label].iloc[:480], X.iloc[480:], frame[label].iloc[480:])
    m.save_package(tmp, heldout[FEATURES], label=label)
    return m


def _ort(path: Path, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, raw)))


def _raw(df: pd.DataFrame, sig_inputs: list[dict]) -> dict[str, np.ndarray]:
    """Raw columns as plain numpy arrays, built here (not through roost's converters)."""
    out = {}
    for i in sig_inputs:
        s = df[i["name"]]
        out[i["name"]] = (
            s.fillna("").astype(str).to_numpy(dtype=object)
            if i["dtype"] == "string"
            else s.to_numpy(dtype=np.float32)
            if i["dtype"] == "float32"
            else s.to_numpy(np.int64)
        )
    return out


@pytest.mark.parametrize("name", ["logreg", "mlp", "wide_deep", "dcn"])
def test_torch_binary_parity(name: str, frame, heldout, tmp_path: Path) -> None:
    import json

    m = _fit_export(name, "clicked", frame, heldout, tmp_path, epochs=3)
    sig = json.loads((tmp_path / "signature.json").read_text())
    assert [i["name"] for i in sig["inputs"]] == m.spec_.names
    got = _ort(tmp_path, _raw(heldout, sig["inputs"]))
    ref = m.predict(heldout)
    assert got["probability"].shape == (len(heldout),)
    np.testing.assert_allclose(got["probability"], ref, atol=1e-5, rtol=0)
    logit = np.log(ref / (1 - ref))
    np.testing.assert_allclose(got["logit"], logit, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(("name", "label"), [("mlp", "kind"), ("dcn", "score"), ("wide_deep", "kind")])
def test_torch_multiclass_regression_parity(name: str, label: str, frame, heldout, tmp_path: Path) -> None:
    m = _fit_export(name, label, frame, heldout, tmp_path, epochs=2)
    got = _ort(tmp_path, m.spec_.raw_inputs(heldout))
    ref = m.predict(heldout)
    if label == "kind":
        assert m.task_ == "multiclass" and got["probabilities"].shape == (len(heldout), 3)
        np.testing.assert_allclose(got["probabilities"], ref, atol=1e-5, rtol=0)
    else:
        assert m.task_ == "regression"
        np.testing.assert_allclose(got["prediction"], ref, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("label", ["clicked", "kind", "score"])
def test_lightgbm_parity(label: str, frame, heldout, tmp_path: Path) -> None:
    m = _fit_export("lightgbm", label, frame, heldout, tmp_path, n_estimators=40)
    got = _ort(tmp_path, m.spec_.raw_inputs(heldout))
    ref = m.predict(heldout)
    out = {"clicked": "probability", "kind": "probabilities", "score": "prediction"}[label]
    np.testing.assert_allclose(got[out], ref, atol=1e-5, rtol=1e-6)
    assert (tmp_path / "native" / "model.txt").is_file()


def test_two_tower_towers(frame, heldout, tmp_path: Path) -> None:
    m = _fit_export("two_tower", "clicked", frame, heldout, tmp_path, epochs=2, dim=8)
    assert m.spec_.names == ["user_id", "user_seg", "item_id", "item_cat"]
    for which in ("user", "item"):
        cols = m.user_columns_ if which == "user" else m.item_columns_
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tmp_path / f"{which}_tower.onnx"), providers=["CPUExecutionProvider"])
        emb = sess.run(["embedding"], m.spec_.subset(cols).raw_inputs(heldout))[0]
        assert emb.shape == (len(heldout), 8)
        np.testing.assert_allclose(emb, m.embed(heldout, which), atol=1e-5)
    got = _ort(tmp_path, m.spec_.raw_inputs(heldout))
    np.testing.assert_allclose(got["probability"], m.predict(heldout), atol=1e-5, rtol=0)
    # score = <u, i> + bias
    u, i = m.embed(heldout, "user"), m.embed(heldout, "item")
    p = 1 / (1 + np.exp(-((u * i).sum(1) + float(m.net_.body.bias.detach()))))
    np.testing.assert_allclose(p, m.predict(heldout), atol=1e-5)
