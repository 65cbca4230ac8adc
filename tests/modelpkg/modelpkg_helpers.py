"""Shared by the model package tests: a hand-built ONNX package and its expected scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from roost.modelpkg import write_package


def tiny_model(path: Path) -> None:
    """probability = sigmoid(0.5 * nan_to_zero(x) + w[color]), built by hand with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("IsNaN", ["x"], ["isnan"]),
        helper.make_node("Where", ["isnan", "zero", "x"], ["xf"]),
        helper.make_node("Mul", ["xf", "half"], ["xs"]),
        helper.make_node(
            "LabelEncoder",
            ["color"],
            ["cidx"],
            domain="ai.onnx.ml",
            keys_strings=["blue", "red"],
            values_int64s=[1, 2],
            default_int64=0,
        ),
        helper.make_node("Gather", ["w", "cidx"], ["cw"]),
        helper.make_node("Add", ["xs", "cw"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["probability"]),
    ]
    inits = [
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array([0.0, -1.0, 1.0], np.float32), "w"),
    ]
    g = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("color", TensorProto.STRING, ["N"]),
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    path.mkdir(parents=True, exist_ok=True)
    onnx.save_model(m, str(path / "model.onnx"))


SIG = {
    "task": "binary",
    "inputs": [{"name": "x", "dtype": "float32", "shape": [-1]}, {"name": "color", "dtype": "string", "shape": [-1]}],
    "outputs": [{"name": "probability", "dtype": "float32", "shape": [-1]}],
    "classes": [0, 1],
    "label": "y",
}


def write_tiny_package(d: Path) -> Path:
    """The tiny model written as a package folder `d`."""
    tiny_model(d)
    write_package(d, SIG, {"framework": "onnx", "model_type": "tiny", "metrics": {"roc_auc": np.float64(0.9)}})
    return d


def expected(x: list[float], color: list[str]) -> np.ndarray:
    """The tiny model's probabilities, computed in NumPy from its weights (NaN x counts as 0)."""
    w = {"blue": -1.0, "red": 1.0}
    z = np.array([0.5 * (0 if v != v else v) + w.get(c, 0.0) for v, c in zip(x, color)])
    return 1 / (1 + np.exp(-z))
