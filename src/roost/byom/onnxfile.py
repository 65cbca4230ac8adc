"""An existing ONNX model as a roost package: kept as is, signature read from the graph."""

from __future__ import annotations

from typing import Any

from roost.byom.convert import Converted
from roost.byom.graph import io_signature
from roost.errors import RoostError

TASK_BY_OUTPUT = {"probability": "binary", "probabilities": "multiclass", "prediction": "regression"}


def convert_onnx(model: Any, task: str | None) -> Converted:
    """Validate an ONNX model (bytes or ModelProto) and describe it."""
    import onnx

    raw = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    try:
        proto = onnx.load_from_string(bytes(raw))
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise RoostError(
            f"not a valid ONNX model: {str(exc).splitlines()[0][:200]}",
            hint="check the file is complete (not truncated) and was saved with onnx.save",
        ) from exc
    inputs, outputs = io_signature(bytes(raw))
    found = [TASK_BY_OUTPUT[o["name"]] for o in outputs if o["name"] in TASK_BY_OUTPUT]
    task = task or (found[0] if found else "regression")
    return Converted(
        bytes(raw), task, "onnx", "onnx", [i["name"] for i in inputs], None, [0, 1] if task == "binary" else []
    )
