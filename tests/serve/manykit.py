"""Many small registry models fast: one logreg package trained once, then copies whose LinearClassifier intercepts
are shifted (each copy answers differently), registered with an alias."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx


def variant(base: Path, dest: Path, shift: float, broken: bool = False) -> Path:
    """A copy of package `base` whose intercepts are shifted by `shift` (or whose model.onnx is garbage)."""
    shutil.copytree(base, dest)
    if broken:
        (dest / "model.onnx").write_bytes(b"not an onnx graph")
        return dest
    m = onnx.load(str(base / "model.onnx"))
    for node in m.graph.node:
        if node.op_type == "LinearClassifier":
            for a in node.attribute:
                if a.name == "intercepts":
                    a.floats[:] = [a.floats[0] - shift, a.floats[1] + shift]
    onnx.save(m, str(dest / "model.onnx"))
    return dest


def register_many(base: Path, root: Path, names: list[str], alias: str = "prod") -> dict[str, Path]:
    """Register one shifted variant of `base` per name (version 1) and point `alias` at it; {name: package}."""
    import roost

    out = {}
    for i, name in enumerate(names):
        pkg = variant(base, root / name, shift=0.25 * (i + 1))
        roost.register_model(None, name, str(pkg))
        roost.set_alias(name, 1, alias)
        out[name] = pkg
    return out


def ort_probability(pkg: Path, cols: list[str], X: np.ndarray) -> np.ndarray:
    """The package's `probability` output for rows X, computed by ONNX Runtime directly (the reference)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    (out,) = sess.run(["probability"], {c: np.ascontiguousarray(X[:, i]) for i, c in enumerate(cols)})
    return np.asarray(out, dtype=np.float32)
