"""An existing ONNX model as a roost package: signature read from the graph, a matrix input split into columns."""

from __future__ import annotations

from typing import Any

from roost.errors import RoostError
from roost.model_import import graph
from roost.model_import.converted import Converted
from roost.model_import.graph import io_signature

TASK_BY_OUTPUT = {"probability": "binary", "probabilities": "multiclass", "prediction": "regression"}
PRIMARY_OUTPUT = {v: k for k, v in TASK_BY_OUTPUT.items()}
ONE_VALUE_PER_ROW = "a roost package takes one value per row for each input (a [N] or [N, 1] tensor)"


def _dims(v: Any) -> list[int | None] | None:
    """An input's dims (None for a dynamic or named dim); None when the graph gives no shape."""
    tt = v.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]


def _shown(dims: list[int | None] | None) -> str:
    return "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _per_column(proto: Any) -> Any:
    """The model with one 1-D input per column: [N, 1] inputs made 1-D, a single [N, F] input split into f0..f{F-1}.

    RoostError for inputs of unknown rank, rank > 2, an unknown feature count, or several matrix inputs."""
    init = {i.name for i in proto.graph.initializer}
    real = [i for i in proto.graph.input if i.name not in init]
    dims = {i.name: _dims(i) for i in real}
    if all(d is not None and len(d) == 1 for d in dims.values()):
        return proto
    if all(d is not None and len(d) == 2 and d[1] == 1 for d in dims.values()):
        return graph.columns_2d_to_1d(proto)
    widths = {n: d[1] for n, d in dims.items() if d is not None and len(d) == 2 and d[1] is not None and d[1] > 1}
    if len(real) == 1 and real[0].name in widths:
        return graph.columns_to_matrix(proto, [f"f{k}" for k in range(widths[real[0].name])], real[0].name)
    bad = next((i for i in real if i.name in widths or len(dims[i.name] or []) not in (1, 2)), real[0])
    raise RoostError(
        f"input {bad.name!r} has shape {_shown(dims[bad.name])}: {ONE_VALUE_PER_ROW}, or one [N, F] matrix input "
        "with a fixed F (split into columns f0..fF-1)",
        hint="re-export the model with 1-D inputs per feature, or one float input of shape [None, F]",
    )


def _rename_tensor(g: Any, old: str, new: str) -> None:
    for n in g.node:
        for j, x in enumerate(n.input):
            if x == old:
                n.input[j] = new
        for j, x in enumerate(n.output):
            if x == old:
                n.output[j] = new
    for o in g.output:
        if o.name == old:
            o.name = new


def _spec_output(proto: Any, task: str) -> Any:
    """Add the task's spec output (prediction [N], probability [N], probabilities [N, C]) when the graph lacks it
    or has it in another shape, computed from that output or else the first one; the other outputs stay."""
    want = PRIMARY_OUTPUT[task]
    g = proto.graph
    outs = {o.name: o for o in g.output}
    rank = 2 if task == "multiclass" else 1
    have = outs.get(want)
    if have is not None and (d := _dims(have)) is not None and len(d) == rank:
        return proto
    src = want if have is not None else g.output[0].name
    dims = _dims(outs[src])
    if have is not None:  # the spec name in another shape: computed under another name, no longer an output
        src = want + "_raw"
        _rename_tensor(g, want, src)
    width = dims[-1] if dims else None
    if task == "multiclass" and dims is not None and len(dims) != 2:
        raise RoostError(
            f"output {src!r} has shape {_shown(dims)}: a multiclass model outputs [N, classes] probabilities",
            hint="pass --task regression or binary, or re-export with a [N, C] output",
        )
    two_scores = task == "binary" and dims is not None and len(dims) == 2 and width == 2
    one_value = dims is None or len(dims) < 2 or (len(dims) == 2 and width in (None, 1))
    if task != "multiclass" and not two_scores and not one_value:
        raise RoostError(
            f"output {src!r} has shape {_shown(dims)}: a {task} model outputs one value per row",
            hint="pass --task multiclass for [N, C] probabilities, or re-export with a [N] or [N, 1] output",
        )
    graph.spec_outputs(proto, task, src, binary_column=1 if two_scores else None, keep_others=True)
    if have is not None:
        kept = [o for o in g.output if o.name != src]
        del g.output[:]
        g.output.extend(kept)
    return proto


def convert_onnx(model: Any, task: str | None) -> Converted:
    """Validate an ONNX model (bytes or ModelProto), check ONNX Runtime loads it, and describe it."""
    import onnx
    import onnxruntime as ort

    raw = model if isinstance(model, (bytes, bytearray)) else model.SerializeToString()
    try:
        proto = onnx.load_from_string(bytes(raw))
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise RoostError(
            f"not a valid ONNX model: {str(exc).splitlines()[0][:200]}",
            hint="check the file is complete (not truncated) and was saved with onnx.save",
        ) from exc
    found = [TASK_BY_OUTPUT[o.name] for o in proto.graph.output if o.name in TASK_BY_OUTPUT]
    task = task or (found[0] if found else "regression")
    proto = _spec_output(_per_column(proto), task)
    data = proto.SerializeToString()
    try:
        ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in proto.opset_import)
        raise RoostError(
            f"ONNX Runtime {ort.__version__} cannot load the model (opsets: {opsets}): "
            f"{' '.join(str(exc).split())[:300]}",
            hint="re-export it for an opset this ONNX Runtime supports (e.g. target_opset=17)"
            if "opset" in str(exc).lower()
            else "check the model runs in onnxruntime.InferenceSession; re-export it if not",
        ) from exc
    inputs, outputs = io_signature(data)
    return Converted(data, task, "onnx", "onnx", [i["name"] for i in inputs], None, [0, 1] if task == "binary" else [])
