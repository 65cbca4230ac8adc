"""Model package: write/read, Predictor validation and casting, no torch on the load path, load_model URIs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelpkg_helpers import SIG, expected, tiny_model

from roost.errors import RoostError
from roost.modelpkg import load, load_model, read_meta, write_package


def test_package_files(pkg: Path) -> None:
    meta = read_meta(pkg)
    assert meta["format_version"] == 1 and meta["task"] == "binary" and meta["features"] == ["x", "color"]
    assert meta["metrics"] == {"roc_auc": 0.9} and meta["classes"] == [0, 1] and "created_at" in meta
    assert json.loads((pkg / "signature.json").read_text())["inputs"][1]["dtype"] == "string"


def test_predict_and_run_cast(pkg: Path) -> None:
    p = load(pkg)
    df = pd.DataFrame({"x": [1.0, None, 4.0, 2.0], "color": ["red", "blue", None, "green"], "extra": 1})
    np.testing.assert_allclose(p.predict(df), expected([1, np.nan, 4, 2], ["red", "blue", "", "green"]), atol=1e-6)
    out = p.run({"x": [1, 2], "color": np.array(["red", "red"])})  # ints and lists are cast
    np.testing.assert_allclose(out["probability"], expected([1, 2], ["red", "red"]), atol=1e-6)
    assert load(pkg / "model.onnx").task == "binary"


def test_cast_is_public_and_takes_a_column_matrix(pkg: Path) -> None:
    """Predictor.cast (used by responsible/native.py): an [N, 1] column is read as [N], like the server does."""
    p = load(pkg)
    np.testing.assert_array_equal(p.cast("x", np.array([[1], [2]])), np.array([1.0, 2.0], np.float32))
    assert p.cast("x", [3]).dtype == np.float32
    assert list(p.cast("color", [["red"], [None]])) == ["red", ""]


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"x": [1.0]}, "missing input"),
        ({"x": [1.0, 2.0], "color": ["red"]}, "different lengths"),
        ({"x": [[1.0, 2.0]], "color": ["red"]}, "1-D"),
        ({"x": ["abc"], "color": ["red"]}, "'abc'"),  # a word in a number column is refused, not scored as NaN
    ],
)
def test_run_validation(pkg: Path, inputs: dict, match: str) -> None:
    p = load(pkg)
    with pytest.raises(RoostError, match=match):
        p.run(inputs)


def test_bad_signature_rejected(tmp_path: Path) -> None:
    tiny_model(tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        write_package(tmp_path, {**SIG, "inputs": [{"name": "x", "dtype": "float16"}]}, {})
    with pytest.raises(RoostError, match="not a roost model package"):
        load(tmp_path)


def test_load_never_imports_torch(pkg: Path) -> None:
    code = (
        "import sys, pandas as pd, roost; p = roost.load_model(sys.argv[1]); "
        "print(p.predict(pd.DataFrame({'x': [1.0], 'color': ['red']}))[0]); "
        "assert 'torch' not in sys.modules and 'lightgbm' not in sys.modules, 'heavy import'"
    )
    res = subprocess.run([sys.executable, "-c", code, str(pkg)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert float(res.stdout) == pytest.approx(expected([1.0], ["red"])[0], abs=1e-6)


def test_load_model_uris(pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_model(pkg).task == "binary"
    assert load_model(f"file://{pkg}").task == "binary"

    class V:
        local_path = str(pkg)

    seen = []
    import roost.registry.api as api

    monkeypatch.setattr(api, "resolve_model", lambda uri: seen.append(uri) or V())
    assert load_model("churn@prod").task == "binary"
    assert load_model("churn/3").task == "binary"
    assert seen == ["churn@prod", "churn/3"]
    with pytest.raises(RoostError, match="no model package"):
        load_model("./nowhere")


def test_registered_model_roundtrip(ws, pkg: Path) -> None:
    import roost

    v = roost.register_model(None, "tiny", str(pkg))
    roost.set_alias("tiny", v.version, "prod")
    p = roost.load_model("tiny@prod")
    np.testing.assert_allclose(
        p.predict({"x": np.array([2.0]), "color": np.array(["blue"])}), expected([2.0], ["blue"]), atol=1e-6
    )
