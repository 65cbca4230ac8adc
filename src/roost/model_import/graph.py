"""ONNX graph surgery shared by the converters: raw 1-D column inputs in, spec-named outputs out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ONNX_DTYPE = {"float32": 1, "int64": 7, "string": 8, "float64": 11, "int32": 6, "bool": 9}
ELEM_NAME = {v: k for k, v in ONNX_DTYPE.items()}


def columns_to_matrix(model: Any, columns: Sequence[str], matrix_input: str | None = None) -> Any:
    """Replace a model's single [N, F] input with one 1-D float32 input per column (Unsqueeze + Concat)."""
    from onnx import TensorProto, helper

    ensure_default_opset(model)
    g = model.graph
    target = next(i for i in g.input if matrix_input in (None, i.name))
    elem, target_name = target.type.tensor_type.elem_type, target.name
    g.input.remove(target)
    nodes: list[Any] = []
    names: list[str] = []
    axes = "roost_shape_col"  # Reshape to [-1, 1] (valid in every opset, unlike Unsqueeze's axes input)
    g.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [2], [-1, 1]))
    for c in columns:
        g.input.append(helper.make_tensor_value_info(c, TensorProto.FLOAT, [None]))
        nodes.append(helper.make_node("Reshape", [c, axes], [f"roost_col{len(names)}"], name=f"roost_col_{len(names)}"))
        names.append(f"roost_col{len(names)}")
    concat_out = target_name if elem == TensorProto.FLOAT else target_name + "__f32"
    nodes.append(helper.make_node("Concat", names, [concat_out], axis=1, name="roost_concat"))
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [concat_out], [target_name], to=elem, name="roost_cast_in"))
    _prepend(g, nodes)
    return model


def columns_2d_to_1d(model: Any, columns: Sequence[str] | None = None) -> Any:
    """Make every [N, 1] input of a per-column model a 1-D input, named like the raw column (in order)."""
    from onnx import TensorProto, helper

    ensure_default_opset(model)
    g = model.graph
    axes = "roost_shape_col"
    g.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [2], [-1, 1]))
    nodes = []
    init = {x.name for x in g.initializer}
    real = [(i.name, i.type.tensor_type.elem_type) for i in g.input if i.name not in init]
    kept = [i for i in g.input if i.name in init]
    new_inputs = []
    for k, (old, elem) in enumerate(real):
        inner = old + "__2d"
        new_name = columns[k] if columns else old
        for n in g.node:
            for j, x in enumerate(n.input):
                if x == old:
                    n.input[j] = inner
        new_inputs.append(helper.make_tensor_value_info(new_name, elem, [None]))
        nodes.append(helper.make_node("Reshape", [new_name, axes], [inner], name=f"roost_col_{k}"))
    del g.input[:]
    g.input.extend(new_inputs + kept)
    _prepend(g, nodes)
    return model


def drop_zipmap(model: Any) -> bool:
    """Take a classifier's ZipMap (probabilities as a list of {class: p} maps) off the graph: the probabilities tensor
    it reads (always float [N, C] by the ONNX-ML spec) becomes the graph output in its place. False when the graph
    had no ZipMap feeding an output."""
    from onnx import TensorProto, helper

    g = model.graph
    outputs = {o.name: i for i, o in enumerate(g.output)}
    found = False
    for node in list(g.node):
        if node.op_type == "ZipMap" and node.output[0] in outputs:
            i = outputs[node.output[0]]
            g.output.remove(g.output[i])
            g.output.insert(i, helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, [None, None]))
            g.node.remove(node)
            found = True
    return found


def ensure_default_opset(model: Any, version: int = 15) -> None:
    """Add an import of the default ONNX domain when a graph (e.g. XGBoost's) has only ai.onnx.ml ops."""
    from onnx import helper

    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("", version))


def _prepend(g: Any, nodes: list[Any]) -> None:
    old = list(g.node)
    del g.node[:]
    g.node.extend(nodes + old)


def spec_outputs(model: Any, task: str, source: str, binary_column: int | None = 1, keep_others: bool = False) -> Any:
    """Expose the spec's output (probability [N] / probabilities [N, C] / prediction [N]) computed from output
    `source` (cast to float): binary takes column `binary_column` of [N, 2] scores, or flattens `source` when it is
    None; multiclass passes it through; regression flattens it. The other outputs are dropped, or kept with
    `keep_others` (the spec output is appended after them)."""
    from onnx import TensorProto, helper

    g = model.graph
    nodes = []
    src = source
    src_elem = next((o.type.tensor_type.elem_type for o in g.output if o.name == source), TensorProto.FLOAT)
    if src_elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [source], ["roost_src_f32"], to=TensorProto.FLOAT))
        src = "roost_src_f32"
    want = {"binary": "probability", "multiclass": "probabilities"}.get(task, "prediction")
    if task == "binary" and binary_column is not None:
        g.initializer.append(helper.make_tensor("roost_idx1", TensorProto.INT64, [], [binary_column]))
        nodes.append(helper.make_node("Gather", [src, "roost_idx1"], [want], axis=1))
    elif task == "multiclass":
        if src != want:  # a float output already named `probabilities` (skl2onnx's) is the spec's as it is
            nodes.append(helper.make_node("Identity", [src], [want]))
    else:
        g.initializer.append(helper.make_tensor("roost_flat", TensorProto.INT64, [1], [-1]))
        nodes.append(helper.make_node("Reshape", [src, "roost_flat"], [want]))
    g.node.extend(nodes)
    if not keep_others:
        del g.output[:]
    g.output.append(
        helper.make_tensor_value_info(want, TensorProto.FLOAT, [None, None] if task == "multiclass" else [None])
    )
    return model


def finalize(model: Any) -> bytes:
    """Check the model (full shape inference off: ML-domain ops) and serialise it."""
    import onnx

    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def io_signature(model_bytes: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Signature entries (name, dtype, shape) of an ONNX model's inputs and outputs."""
    import onnx

    m = onnx.load_from_string(model_bytes)
    init = {i.name for i in m.graph.initializer}

    def entry(v: Any) -> dict[str, Any]:
        tt = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim] if tt.HasField("shape") else [-1]
        return {"name": v.name, "dtype": ELEM_NAME.get(tt.elem_type, "float32"), "shape": shape or [-1]}

    return [entry(i) for i in m.graph.input if i.name not in init], [entry(o) for o in m.graph.output]
