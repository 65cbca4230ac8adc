"""The serving graph of a column model: its k float32 column inputs, each reshaped to [N, 1] and joined by one
Concat into an [N, k] matrix (what roost's exporters and converters write), become that matrix as the one input.

onnxruntime pays ~1 µs per graph input on every run (one OrtValue, name lookups): 30 columns cost ~30 µs of a
~34 µs 1-row run, the matrix input ~4 µs (bench/RESULTS.md "Serving"). The rewrite removes only the reshapes and
the Concat, whose output is exactly the matrix, so the answers are the same bits; the loader checks that on random
rows before it serves the new graph (roost.serve.loader)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FLOAT = 1  # onnx.TensorProto.FLOAT


def _ints(init: Any) -> list[int] | None:
    """The values of an int64 initializer, or None."""
    from onnx import numpy_helper

    if init is None or init.data_type != 7:  # INT64
        return None
    return [int(v) for v in numpy_helper.to_array(init).reshape(-1)]


def _column_of(node: Any, inits: dict[str, Any]) -> bool:
    """Whether `node` turns a 1-D column into an [N, 1] one: Reshape to [-1, 1], or Unsqueeze on axis 1."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return False
    attrs = {a.name: a for a in node.attribute}
    if node.op_type == "Reshape":
        return len(node.input) == 2 and _ints(inits.get(node.input[1])) == [-1, 1] and not attrs.get("allowzero")
    if node.op_type == "Unsqueeze":
        if len(node.input) == 2:  # opset 13+: axes is an input
            return _ints(inits.get(node.input[1])) == [1]
        return len(node.input) == 1 and "axes" in attrs and list(attrs["axes"].ints) == [1]
    return False


def may_match(session: Any, columns: Mapping[str, int], onnx_path: Any) -> bool:
    """Whether matrix_graph could match the graph a session serves, told without the onnx package (~240 ms and
    11 MB to import): every graph input is one of `columns` as a 1-D float tensor, and the model file names a
    Concat and a Reshape or Unsqueeze node (an operator's name is stored as plain bytes in the ONNX file)."""
    import mmap

    ins = session.get_inputs()
    if sorted(i.name for i in ins) != sorted(columns):
        return False
    if any(i.type != "tensor(float)" or len(i.shape or ()) != 1 for i in ins):
        return False
    with open(onnx_path, "rb") as f:
        if f.seek(0, 2) == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"Concat") >= 0 and (data.find(b"Reshape") >= 0 or data.find(b"Unsqueeze") >= 0)


def matrix_graph(model: Any, columns: list[str]) -> tuple[Any, str, list[str]] | None:
    """(new model, matrix input name, its column order) when every input of `model` (an onnx.ModelProto, left
    unchanged) is one of `columns` as a float32 tensor used only by a column reshape feeding one Concat on axis 1
    that joins them all; None for any other graph."""
    from onnx import ModelProto, helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    real = [i for i in g.input if i.name not in inits]
    if sorted(i.name for i in real) != sorted(columns) or len(set(columns)) != len(columns):
        return None
    if any(i.type.tensor_type.elem_type != FLOAT for i in real):
        return None
    if any(a.type in (5, 10) for n in g.node for a in n.attribute):  # GRAPH / GRAPHS: outer names may be read
        return None
    users: dict[str, list[Any]] = {}
    for n in g.node:
        for x in set(n.input):
            users.setdefault(x, []).append(n)
    outputs = {o.name for o in g.output}
    col_of: dict[str, str] = {}  # [N, 1] tensor -> its column
    concat = None
    for c in columns:
        use = users.get(c, [])
        if len(use) != 1 or c in outputs or not _column_of(use[0], inits) or use[0].input[0] != c:
            return None
        t = use[0].output[0]
        joined = users.get(t, [])
        if len(joined) != 1 or t in outputs or joined[0].op_type != "Concat" or joined[0].domain not in ("", "ai.onnx"):
            return None
        if concat is None:
            concat = joined[0]
        elif joined[0] is not concat:
            return None
        col_of[t] = c
    assert concat is not None
    axis = next((a.i for a in concat.attribute if a.name == "axis"), None)
    if axis not in (1, -1) or len(concat.input) != len(columns) or set(concat.input) != set(col_of):
        return None
    order = [col_of[t] for t in concat.input]
    matrix = concat.output[0]
    dim = real[0].type.tensor_type.shape.dim
    rows: Any = dim[0].dim_param or (dim[0].dim_value or None) if len(dim) == 1 else None

    out = ModelProto()
    out.CopyFrom(model)
    og = out.graph
    gone = {id(n) for n in g.node if n is concat or (n.output and n.output[0] in col_of)}
    kept = [nn for n, nn in zip(g.node, og.node) if id(n) not in gone]
    del og.node[:]
    og.node.extend(kept)
    still = {x for n in og.node for x in n.input}
    unused = {name for name in inits if name not in still}
    kept_inits = [i for i in og.initializer if i.name not in unused]
    del og.initializer[:]
    og.initializer.extend(kept_inits)
    kept_inputs = [i for i in og.input if i.name in inits and i.name not in unused]
    del og.input[:]
    og.input.extend([helper.make_tensor_value_info(matrix, FLOAT, [rows, len(columns)]), *kept_inputs])
    dropped = set(col_of) | {matrix}
    kept_info = [v for v in og.value_info if v.name not in dropped]
    del og.value_info[:]
    og.value_info.extend(kept_info)
    return out, matrix, order


class ColumnFeed(dict[str, np.ndarray]):
    """Input arrays that are the rows of one (inputs x rows) float32 `matrix` in `order` (the V2 decoder's one-matrix
    path, in the decoding model's input order): a model with a matrix serving graph and the same input order feeds
    the matrix itself, not its rows (a canary or shadow whose signature lists the inputs in another order stacks
    the rows by name)."""

    __slots__ = ("matrix", "order")

    def __init__(self, order: Mapping[str, int], matrix: np.ndarray, views: bool = True) -> None:
        super().__init__(zip(order, matrix) if views else ())
        self.matrix = matrix
        self.order = order  # the input names of the matrix's rows, in order (the decoding model's float_columns)

    @classmethod
    def bare(cls, order: Mapping[str, int], matrix: np.ndarray) -> ColumnFeed:
        """The matrix alone, no per-input views (~3 µs of 30 numpy views saved): only for a run on a model whose
        matrix serving graph takes this very order (LoadedModel.feeds_matrix), which reads `matrix` and nothing else."""
        return cls(order, matrix, views=False)
