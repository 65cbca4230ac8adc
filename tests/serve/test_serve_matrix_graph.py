"""The matrix serving graph (#35 item 2): a column model's k float inputs, reshaped and joined by one Concat, are
served as one [N, k] input; every answer has the same bits as the package's own graph run by onnxruntime."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import orjson
import pytest
from onnx import TensorProto, helper
from servekit import IRIS_COLUMNS, ROOT, InProcess, iris_package, v2_body, write_package

from roost.serve.matrixgraph import ColumnFeed, matrix_graph
from roost.serve.worker import create_app

SIG = [IRIS_COLUMNS[i] for i in (3, 0, 2, 1)]  # reshape_pkg's signature order: not the graph's Concat order


@pytest.fixture(scope="module")
def reshape_pkg(tmp_path_factory):
    """Iris through roost's own converter surgery (Reshape + Concat), its signature listing the columns in another
    order than the graph's Concat (the served matrix must be permuted)."""
    return iris_package(tmp_path_factory.mktemp("iris_reshape") / "iris", reshape=True, signature_order=[3, 0, 2, 1])


def _rows(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, k)) * rng.choice([1e-3, 1.0, 30.0, 1e4], k)).astype(np.float32)


def _reference(pkg, cols: list[str], X: np.ndarray, output: str) -> np.ndarray:
    """The package's own graph, one input per column, straight through onnxruntime."""
    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    return sess.run([output], {c: np.ascontiguousarray(X[:, j]) for j, c in enumerate(cols)})[0]


@pytest.mark.parametrize("which", ["bc", "iris_reshape"])
def test_column_models_serve_one_matrix_input_with_the_same_bits(which, pkgs, bc_data, reshape_pkg):
    if which == "bc":
        pkg, cols, output, name = pkgs["bc"], bc_data[2], "probability", "bc"
    else:
        pkg, cols, output, name = reshape_pkg, SIG, "probabilities", "iris"
    app = create_app([f"{name}={pkg}"])
    model = app.repo.get(name)
    ins = model.session.get_inputs()
    assert len(ins) == 1 and ins[0].shape[1] == len(cols)  # one [N, k] input, not k columns
    ip = InProcess(app)
    try:
        for n, seed in ((1, 0), (1, 1), (7, 2), (64, 3)):
            X = _rows(n, len(cols), seed)
            want = _reference(pkg, cols, X, output)
            body = v2_body(cols, X)
            for sent in (body, {"inputs": body["inputs"][::-1]}):  # the one-matrix decoder, any input order
                status, _, out = ip.request("POST", f"/v2/models/{name}/infer", orjson.dumps(sent))
                assert status == 200, out
                got = next(o for o in orjson.loads(out)["outputs"] if o["name"] == output)
                got_arr = np.asarray(got["data"], dtype=np.float32).reshape(got["shape"])
                assert got_arr.tobytes() == want.tobytes(), (n, seed)
            # the general decoder (an input with parameters): its columns are stacked into the matrix
            general = {"inputs": [{**i, "parameters": {}} for i in body["inputs"]]}
            status, _, out = ip.request("POST", f"/v2/models/{name}/infer", orjson.dumps(general))
            assert status == 200, out
            got = next(o for o in orjson.loads(out)["outputs"] if o["name"] == output)
            assert np.asarray(got["data"], dtype=np.float32).reshape(got["shape"]).tobytes() == want.tobytes()
    finally:
        ip.close()


def test_merged_batches_of_matrices_answer_each_request_like_the_package_graph(pkgs, bc_data):
    _, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    model = app.repo.get("bc")
    sizes = [1, 3, 1, 16, 2, 1]
    Xs = [_rows(n, len(cols), 10 + i) for i, n in enumerate(sizes)]
    order = model.package.float_columns

    async def go() -> list:
        feeds = [ColumnFeed(order, np.ascontiguousarray(X.T)) for X in Xs[:3]]
        feeds += [{c: np.ascontiguousarray(X[:, j]) for j, c in enumerate(cols)} for X in Xs[3:]]  # plain dicts
        return await asyncio.gather(*[model.batcher.submit(f, n) for f, n in zip(feeds, sizes)])

    try:
        got = asyncio.run(go())
        for X, out in zip(Xs, got):
            assert out["probability"].tobytes() == _reference(pkgs["bc"], cols, X, "probability").tobytes()
    finally:
        model.close()


def _two_inputs(op_nodes: list, inputs: list[str]) -> onnx.ModelProto:
    g = helper.make_graph(
        op_nodes,
        "g",
        [helper.make_tensor_value_info(c, TensorProto.FLOAT, ["N"]) for c in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _add_package(tmp_path) -> Path:
    """A float-column package whose graph is y = a + b: no Concat, so no matrix graph can be built from it."""
    add = _two_inputs([helper.make_node("Add", ["a", "b"], ["y"])], ["a", "b"])
    del add.graph.output[:]
    add.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"]))
    ins = [{"name": c, "dtype": "float32", "shape": [-1]} for c in ("a", "b")]
    outs = [{"name": "y", "dtype": "float32", "shape": [-1]}]
    return write_package(tmp_path / "add", add, ins, outs, "regression", None, {"framework": "onnx"})


def test_a_graph_that_cannot_match_is_loaded_without_importing_onnx(tmp_path, pkgs):
    """The onnx package (~240 ms, 11 MB) is imported only for a graph the rewrite can match: one without a Concat is
    told apart from onnxruntime's input metadata and the file's operator names."""
    pkg = _add_package(tmp_path)
    code = (
        "import sys; from roost.serve.worker import create_app; app = create_app(sys.argv[1:]); "
        "m = next(iter(app.repo.slots.values())).current; "
        "print(len(m.session.get_inputs()), 'onnx' in sys.modules); m.close()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for path, want in ((pkg, "2 False"), (pkgs["bc"], "1 True")):  # the bc package matches: onnx builds its graph
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n")[-2] == want, (path, out.stdout, out.stderr[-2000:])


def test_graphs_of_another_shape_keep_their_inputs(tmp_path):
    reshape = [helper.make_node("Reshape", [c, "shape"], [f"{c}2"]) for c in ("a", "b")]
    # a column also used outside the Concat, a Concat on axis 0, a Concat missing a column: not rewritten
    used_twice = _two_inputs(
        [
            *reshape,
            helper.make_node("Concat", ["a2", "b2"], ["m"], axis=1),
            helper.make_node("Add", ["a", "b"], ["s"]),
            helper.make_node("Identity", ["m"], ["y"]),
        ],
        ["a", "b"],
    )
    axis0 = _two_inputs([*reshape, helper.make_node("Concat", ["a2", "b2"], ["y"], axis=0)], ["a", "b"])
    partial = _two_inputs(
        [reshape[0], helper.make_node("Concat", ["a2"], ["m"], axis=1), helper.make_node("Add", ["m", "b"], ["y"])],
        ["a", "b"],
    )
    for m in (used_twice, axis0, partial):
        assert matrix_graph(m, ["a", "b"]) is None
    ok = _two_inputs([*reshape, helper.make_node("Concat", ["b2", "a2"], ["y"], axis=1)], ["a", "b"])
    built = matrix_graph(ok, ["a", "b"])
    assert built is not None and built[1:] == ("y", ["b", "a"])
    # served as it is: a float-column model whose graph has no such Concat still answers a + b
    pkg = _add_package(tmp_path)
    app = create_app([str(pkg)])
    assert len(app.repo.get("add").session.get_inputs()) == 2
    ip = InProcess(app)
    try:
        status, _, out = ip.request(
            "POST", "/v2/models/add/infer", orjson.dumps(v2_body(["a", "b"], np.array([[1.5, 2.0]])))
        )
        assert status == 200 and orjson.loads(out)["outputs"][0]["data"] == [3.5]
    finally:
        ip.close()


def test_a_matrix_decoded_for_another_input_order_is_fed_by_name(reshape_pkg):
    """A canary or shadow gets the primary's decoded matrix; when its signature lists the same inputs in another
    order, each column must still reach the input of its name."""
    app = create_app([f"iris={reshape_pkg}"])
    model = app.repo.get("iris")
    try:
        other = {c: i for i, c in enumerate(IRIS_COLUMNS)}  # not the model's order (SIG)
        for n, seed in ((1, 20), (5, 21)):
            X = _rows(n, 4, seed)  # columns in `other` order
            want = _reference(reshape_pkg, list(other), X, "probabilities")
            got = model.run(ColumnFeed(other, np.ascontiguousarray(X.T)))["probabilities"]
            assert got.tobytes() == want.tobytes()
    finally:
        model.close()
