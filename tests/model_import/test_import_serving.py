"""Every imported framework, served by `roost serve`: the HTTP answers equal the native model's predictions."""

import sys
from pathlib import Path

import numpy as np
import pytest

import roost

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from servekit import Server

NAMES = ["logreg", "column_transformer", "random_forest", "gradient_boosting", "lightgbm", "xgboost", "torch_mlp"]


def _v2_body(frame):
    inputs = []
    for c in frame.columns:
        col = frame[c]
        if col.dtype.kind in "fiu":
            inputs.append({"name": c, "shape": [len(col)], "datatype": "FP32", "data": col.astype(float).tolist()})
        else:
            inputs.append({"name": c, "shape": [len(col)], "datatype": "BYTES", "data": col.astype(str).tolist()})
    return {"inputs": inputs}


@pytest.mark.slow
def test_imported_models_served_equal_native(ws, fitted, tmp_path):
    refs = []
    for name in NAMES:
        model, train, held, native = fitted[name]
        roost.log_model(
            model,
            name=name.replace("_", "-"),
            sample_input=train.head(60),
            task="binary" if name == "torch_mlp" else None,
        )
        refs.append(f"{name.replace('_', '-')}/1")
    # a raw ONNX file too
    raw = Path(roost.resolve_model("random-forest/1").local_path, "model.onnx").read_bytes()
    roost.log_model(raw, name="raw-onnx")
    refs.append("raw-onnx/1")
    srv = Server(refs, cwd=ws.root, log=tmp_path / "server.log", env={"ROOST_WORKSPACE": str(ws.root)}).wait_ready(
        timeout=120
    )
    try:
        with srv.client() as c:
            for name in NAMES + ["raw_onnx"]:
                model, train, held, native = fitted["random_forest" if name == "raw_onnx" else name]
                served = name.replace("_", "-")
                r = c.post(f"/v2/models/{served}/infer", json=_v2_body(held))
                assert r.status_code == 200, (name, r.text)
                outs = {o["name"]: o for o in r.json()["outputs"]}
                got = np.asarray(outs["probability"]["data"], dtype=np.float64)
                np.testing.assert_allclose(got, native(held), atol=1e-5, err_msg=name)
                labels = np.asarray(outs["label"]["data"])
                assert outs["label"]["datatype"] == "INT64"
                np.testing.assert_array_equal(labels, (native(held) >= 0.5).astype(int), err_msg=name)
                if name not in ("torch_mlp", "raw_onnx"):
                    np.testing.assert_array_equal(labels, model.predict(held), err_msg=name)
                rows = held.head(3).to_dict(orient="records")
                r = c.post(f"/v1/models/{served}:predict", json={"instances": rows})
                assert r.status_code == 200, (name, r.text)
                preds = r.json()["predictions"]
                assert abs(preds[0]["probability"] - float(native(held.head(1))[0])) < 1e-5
                assert preds[0]["label"] == int(native(held.head(1))[0] >= 0.5)
    finally:
        srv.stop()
