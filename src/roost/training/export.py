"""Export torch models to a self-contained model.onnx that takes raw columns, and check parity with PyTorch."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roost.training.onnx_graph import attach_columns, finalize, rename_outputs
from roost.training.preprocess import FeatureSpec

log = logging.getLogger(__name__)

OUTPUTS = {"binary": ["probability", "logit"], "multiclass": ["probabilities"], "regression": ["prediction"]}


def _quiet() -> None:
    """Silence the exporter's chatter (missing torchvision ops, deprecation notes)."""
    for name in ("torch.onnx", "torch.onnx._internal.exporter._registration", "torch._export", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)


def export_module(
    module: Any, spec: FeatureSpec, example: Sequence[np.ndarray], output_names: list[str], path: Path | str
) -> Any:
    """Export `module(*cols)` (one 1-D tensor per spec column) to `path` with raw-column inputs; returns the proto."""
    import onnx
    import torch

    _quiet()
    n = len(spec.columns)
    names = [f"in_{i}" for i in range(n)]
    tmp_out = [f"out_{k}" for k in range(len(output_names))]  # renamed after export: the exporter can clash
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in _example(example))
    batch = torch.export.Dim("batch", min=1)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            module,
            args,
            input_names=names,
            output_names=tmp_out,
            dynamic_shapes=(tuple({0: batch} for _ in range(n)),),
            dynamo=True,
            external_data=False,
            verbose=False,
            optimize=True,
        )
    if prog is None:  # torch returns None only when exporting to a file, which this call does not
        raise RuntimeError("torch.onnx.export returned no program")
    model = prog.model_proto
    model = rename_outputs(model, dict(zip(tmp_out, output_names)))
    model = attach_columns(model, spec.columns, names)
    model = finalize(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return model


def _example(cols: Sequence[np.ndarray], rows: int = 8) -> list[np.ndarray]:
    """At least `rows` example rows (dynamic batch export dislikes batch sizes 0 and 1)."""
    n = len(cols[0])
    reps = int(np.ceil(rows / max(n, 1)))
    return [np.tile(c[:rows], reps)[:rows] if n else c for c in cols]


def torch_outputs(module: Any, cols: Sequence[np.ndarray], batch: int = 8192) -> list[np.ndarray]:
    """Run `module(*cols)` in eval mode, in batches, and return numpy outputs."""
    import torch

    module.eval()
    outs: list[list[np.ndarray]] = []
    n = len(cols[0])
    with torch.no_grad():
        for s in range(0, n, batch):
            res = module(*[torch.from_numpy(np.ascontiguousarray(c[s : s + batch])) for c in cols])
            res = res if isinstance(res, tuple) else (res,)
            outs.append([r.numpy() for r in res])
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def parity(path: Path | str, raw: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> float:
    """Max over the named outputs of |ONNX Runtime − reference| / max(1, |reference|), on raw inputs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    names = list(expected)
    got = sess.run(names, raw)
    worst = 0.0
    for g, n in zip(got, names):
        ref = expected[n].astype(np.float64)
        diff = np.abs(g.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))
        worst = max(worst, float(np.max(diff, initial=0.0)))
    return worst
