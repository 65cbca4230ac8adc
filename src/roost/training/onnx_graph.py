"""ONNX graph surgery: put raw-column inputs (string vocabularies, casts, concat) in front of a core model."""

from __future__ import annotations

from typing import Any

import numpy as np

from roost.training.preprocess import ColumnSpec

ML_DOMAIN = "ai.onnx.ml"


def _dim_name(model: Any) -> str:
    """The symbolic batch dimension name used by the model's first input (or 'batch')."""
    for i in model.graph.input:
        dims = i.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            return str(dims[0].dim_param)
    return "batch"


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename a value everywhere it is consumed in `graph` (not subgraphs: exporters emit none here)."""
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name == old:
                node.input[k] = new


def _free_name(graph: Any, name: str) -> None:
    """Rename an internal value (node output, initializer) called `name` so a graph input can take the name."""
    if any(o.name == name for o in graph.output):
        raise ValueError(f"column {name!r} clashes with a model output name; rename the column")
    new = f"{name}::core"
    for node in graph.node:
        for k, v in enumerate(node.output):
            if v == name:
                node.output[k] = new
        for k, v in enumerate(node.input):
            if v == name:
                node.input[k] = new
    for init in graph.initializer:
        if init.name == name:
            init.name = new
    for vi in graph.value_info:
        if vi.name == name:
            vi.name = new


def _ensure_opset(model: Any, domain: str, version: int) -> None:
    """Import `domain` at least at `version`."""
    for op in model.opset_import:
        if op.domain == domain:
            op.version = max(op.version, version)
            return
    model.opset_import.append(__import__("onnx").helper.make_opsetid(domain, version))


def _label_encoder(col: ColumnSpec, out: str) -> Any:
    """LabelEncoder string → int64 index (vocabulary i → i + 1, unknown → 0)."""
    from onnx import helper

    keys = list(col.vocab) or ["\x00<empty vocabulary>"]
    return helper.make_node(
        "LabelEncoder",
        [col.name],
        [out],
        domain=ML_DOMAIN,
        name=f"vocab_{col.name}",
        keys_strings=keys,
        values_int64s=list(range(1, len(keys) + 1)),
        default_int64=0,
    )


def raw_input(name: str, dtype: str, dim: str) -> Any:
    """A 1-D graph input of a signature dtype."""
    from onnx import TensorProto, helper

    et = {"float32": TensorProto.FLOAT, "string": TensorProto.STRING, "int64": TensorProto.INT64}[dtype]
    return helper.make_tensor_value_info(name, et, [dim])


def attach_columns(model: Any, columns: list[ColumnSpec], graph_inputs: list[str]) -> Any:
    """Replace the core model's per-column inputs (in order) by raw inputs named like the columns."""
    g = model.graph
    dim = _dim_name(model)
    by_name = {i.name: i for i in g.input}
    if set(graph_inputs) - set(by_name):
        raise ValueError(f"graph has no inputs {sorted(set(graph_inputs) - set(by_name))}")
    new_nodes, new_inputs = [], []
    for col in columns:
        if col.name not in set(graph_inputs):
            _free_name(g, col.name)
    for col, gi in zip(columns, graph_inputs):
        internal = f"{col.name}::encoded"
        _rename(g, gi, internal)
        if col.kind == "categorical":
            new_nodes.append(_label_encoder(col, internal))
        else:
            new_nodes.append(__import__("onnx").helper.make_node("Identity", [col.name], [internal]))
        new_inputs.append(raw_input(col.name, col.input_dtype, dim))
    keep = [i for i in g.input if i.name not in set(graph_inputs)]
    del g.input[:]
    g.input.extend(new_inputs + keep)
    nodes = new_nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    _ensure_opset(model, ML_DOMAIN, 2)
    return model


def attach_matrix(model: Any, columns: list[ColumnSpec], matrix_input: str) -> Any:
    """Replace a float [N, F] input by raw columns: categorical → index, all cast to float and concatenated."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    dim = _dim_name(model)
    shape = "roost::column_shape"
    for col in columns:
        if col.name != matrix_input:
            _free_name(g, col.name)
    nodes = []
    parts = []
    for col in columns:
        cur = col.name
        if col.kind == "categorical":
            nodes.append(_label_encoder(col, f"{col.name}::index"))
            cur = f"{col.name}::index"
        if col.input_dtype != "float32":
            nodes.append(helper.make_node("Cast", [cur], [f"{col.name}::float"], to=TensorProto.FLOAT))
            cur = f"{col.name}::float"
        nodes.append(helper.make_node("Reshape", [cur, shape], [f"{col.name}::col"]))
        parts.append(f"{col.name}::col")
    nodes.append(helper.make_node("Concat", parts, [matrix_input], axis=1))
    g.initializer.append(numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), shape))
    keep = [i for i in g.input if i.name != matrix_input]
    del g.input[:]
    g.input.extend([raw_input(c.name, c.input_dtype, dim) for c in columns] + keep)
    all_nodes = nodes + list(g.node)
    del g.node[:]
    g.node.extend(all_nodes)
    _ensure_opset(model, ML_DOMAIN, 2)
    return model


def rename_outputs(model: Any, mapping: dict[str, str]) -> Any:
    """Rename graph outputs (through Identity nodes, so internal names stay valid)."""
    from onnx import helper

    g = model.graph
    for out in g.output:
        if out.name in mapping:
            new = mapping[out.name]
            _free_name(g, new)
            g.node.append(helper.make_node("Identity", [out.name], [new]))
            out.name = new
    return model


def finalize(model: Any, doc: str = "") -> Any:
    """Stamp producer info, run the ONNX checker and shape inference."""
    import onnx

    model.producer_name = "roost"
    if doc:
        model.doc_string = doc
    onnx.checker.check_model(model)
    return model
