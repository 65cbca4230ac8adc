"""Test kit for serving: model packages built with skl2onnx, and a real server process on a free port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[2]


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_")


def breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's breast_cancer data as float32 features, labels and snake_case column names."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data.astype(np.float32), d.target, [_snake(n) for n in d.feature_names]


def _columns_to_matrix(model: onnx.ModelProto, columns: list[str], matrix_input: str) -> None:
    """Replace the graph's matrix input by one 1-D float input per column (Unsqueeze + Concat in the graph)."""
    g = model.graph
    old = [i for i in g.input if i.name == matrix_input][0]
    g.input.remove(old)
    axes = helper.make_tensor("roost_axes_1", TensorProto.INT64, [1], [1])
    g.initializer.append(axes)
    nodes = []
    for c in columns:
        g.input.append(helper.make_tensor_value_info(c, TensorProto.FLOAT, ["N"]))
        nodes.append(helper.make_node("Unsqueeze", [c, "roost_axes_1"], [f"{c}__2d"]))
    nodes.append(helper.make_node("Concat", [f"{c}__2d" for c in columns], [matrix_input], axis=1))
    for n in reversed(nodes):
        g.node.insert(0, n)


def float_columns_request(cols: list[str], X: np.ndarray, model: str = "bc") -> Any:
    """A KServe V2 gRPC ModelInferRequest for `model`: one FP32 raw input per column of X, in `cols` order."""
    import tritonclient.grpc.service_pb2 as pb

    req = pb.ModelInferRequest(model_name=model)
    for i, c in enumerate(cols):
        req.inputs.add(name=c, datatype="FP32", shape=[len(X)])
        req.raw_input_contents.append(np.ascontiguousarray(X[:, i], "<f4").tobytes())
    return req


def logreg_package(dest: Path, C: float = 1.0, flip: bool = False, meta_extra: dict | None = None) -> Path:
    """A binary package: StandardScaler + LogisticRegression on breast_cancer, one ONNX input per column."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, cols = breast_cancer()
    if flip:
        y = 1 - y
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(X, y)
    clf = pipe.steps[-1][1]
    m = convert_sklearn(
        pipe,
        initial_types=[("X", FloatTensorType([None, len(cols)]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    _columns_to_matrix(m, cols, "X")
    g = m.graph
    g.initializer.append(helper.make_tensor("roost_one", TensorProto.INT64, [], [1]))
    g.node.append(helper.make_node("Gather", ["probabilities", "roost_one"], ["probability"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"]))
    onnx.checker.check_model(m)
    inputs = [{"name": c, "dtype": "float32", "shape": [-1]} for c in cols]
    outputs = [{"name": "probability", "dtype": "float32", "shape": [-1]}]
    meta = {"framework": "sklearn", "model_type": "logreg", "task": "binary", "features": cols, **(meta_extra or {})}
    return write_package(dest, m, inputs, outputs, "binary", [0, 1], meta)


IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_package(dest: Path, reshape: bool = False, signature_order: list[int] | None = None) -> Path:
    """A multiclass package (iris, 4 inputs) with output probabilities [-1, 3]. `reshape`: the columns are joined by
    roost's own converter surgery (Reshape + Concat, roost.model_import.graph) instead of Unsqueeze + Concat;
    `signature_order`: the graph's columns by position in the order signature.json lists them (default: the same)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from roost.model_import.graph import columns_to_matrix

    d = load_iris()
    cols = [_snake(n.replace(" (cm)", "")) for n in d.feature_names]
    assert cols == IRIS_COLUMNS
    clf = LogisticRegression(max_iter=2000).fit(d.data.astype(np.float32), d.target)
    m = convert_sklearn(
        clf,
        initial_types=[("X", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    if reshape:
        columns_to_matrix(m, cols)
    else:
        _columns_to_matrix(m, cols, "X")
    keep = [o for o in m.graph.output if o.name == "probabilities"]
    del m.graph.output[:]
    m.graph.output.extend(keep)
    listed = [cols[i] for i in signature_order] if signature_order is not None else cols
    inputs = [{"name": c, "dtype": "float32", "shape": [-1]} for c in listed]
    outputs = [{"name": "probabilities", "dtype": "float32", "shape": [-1, 3]}]
    return write_package(
        dest, m, inputs, outputs, "multiclass", [0, 1, 2], {"framework": "sklearn", "features": listed}
    )


def strings_package(dest: Path) -> Path:
    """A regression package with a string input: prediction = x + code(country) (a = 1, b = 2, c = 3, else 0)."""
    nodes = [
        helper.make_node(
            "LabelEncoder",
            ["country"],
            ["code"],
            domain="ai.onnx.ml",
            keys_strings=["a", "b", "c"],
            values_int64s=[1, 2, 3],
            default_int64=0,
        ),
        helper.make_node("Cast", ["code"], ["codef"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "codef"], ["prediction"]),
    ]
    g = helper.make_graph(
        nodes,
        "strings",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("country", TensorProto.STRING, ["N"]),
        ],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N"])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.checker.check_model(m)
    inputs = [{"name": "x", "dtype": "float32", "shape": [-1]}, {"name": "country", "dtype": "string", "shape": [-1]}]
    outputs = [{"name": "prediction", "dtype": "float32", "shape": [-1]}]
    return write_package(dest, m, inputs, outputs, "regression", None, {"framework": "onnx"})


def write_package(
    dest: Path, model: onnx.ModelProto, inputs: list, outputs: list, task: str, classes: list | None, meta: dict
) -> Path:
    """Write model.onnx + signature.json + roost-model.yaml per docs/model-package.md."""
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dest / "model.onnx"))
    sig = {"task": task, "inputs": inputs, "outputs": outputs, "label": "target"}
    if classes is not None:
        sig["classes"] = classes
    (dest / "signature.json").write_text(json.dumps(sig, indent=2))
    full = {
        "format_version": 1,
        "framework": "sklearn",
        "model_type": "logreg",
        "task": task,
        "classes": classes,
        "label": "target",
        "features": [i["name"] for i in inputs],
        "feature_refs": [],
        "entities": [],
        "run_id": None,
        "metrics": {},
        "created_at": "2026-11-25T10:00:00+00:00",
        **meta,
    }
    (dest / "roost-model.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    return dest


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m roost.serve ...` on a free loopback port, in its own session; stopped by process group."""

    def __init__(self, models: list[str], *args: str, cwd: Path | None = None, log: Path, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # (ROOST_SERVE_GRPC_FRONT passes: the gRPC tests run against the front it names, asgi by default)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_") or k == "ROOST_SERVE_GRPC_FRONT"}
        full_env.update(env or {})
        full_env["PYTHONPATH"] = str(ROOT / "src")
        cmd = [sys.executable, "-m", "roost.serve", *models, "--port", str(self.port), *args]
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> Server:
        """Block until every worker is up (the supervisor's 'serving ... on http' line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving " in self.output() and " on http://" in self.output():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.output()}")

    def worker_pids(self) -> list[int]:
        """Pids of the supervisor's live worker processes."""
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def client(self, **kw: object) -> httpx.Client:
        """An httpx client for this server."""
        return httpx.Client(base_url=self.url, timeout=30.0, **kw)

    def stop(self) -> int | None:
        """SIGTERM the process group, then SIGKILL it if it lingers; returns the supervisor's exit code."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=60)  # (drain + flush under load; only a hang guard)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._fh.close()
        return self.proc.returncode


def v2_body(cols: list[str], X: np.ndarray) -> dict:
    """A KServe V2 JSON request with one FP32 input per column."""
    return {
        "inputs": [
            {"name": c, "datatype": "FP32", "shape": [len(X)], "data": X[:, i].tolist()} for i, c in enumerate(cols)
        ]
    }


def mixed_package(dest: Path) -> Path:
    """A regression package with one input per dtype: y = f + d + i + b + code(s) (a = 1, b = 2, else 0), float32."""
    nodes = [
        helper.make_node(
            "LabelEncoder",
            ["s"],
            ["code"],
            domain="ai.onnx.ml",
            keys_strings=["a", "b"],
            values_int64s=[1, 2],
            default_int64=0,
        ),
        *[helper.make_node("Cast", [n], [f"{n}f"], to=TensorProto.FLOAT) for n in ("d", "i", "b", "code")],
        helper.make_node("Sum", ["f", "df", "if", "bf", "codef"], ["y"]),
    ]
    types = {"f": TensorProto.FLOAT, "d": TensorProto.DOUBLE, "i": TensorProto.INT64, "b": TensorProto.BOOL}
    ins = [helper.make_tensor_value_info(n, t, ["N"]) for n, t in types.items()]
    ins.append(helper.make_tensor_value_info("s", TensorProto.STRING, ["N"]))
    g = helper.make_graph(nodes, "mixed", ins, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.checker.check_model(m)
    dtypes = {"f": "float32", "d": "float64", "i": "int64", "b": "bool", "s": "string"}
    inputs = [{"name": n, "dtype": t, "shape": [-1]} for n, t in dtypes.items()]
    outputs = [{"name": "y", "dtype": "float32", "shape": [-1]}]
    return write_package(dest, m, inputs, outputs, "regression", None, {"framework": "onnx"})


def column_package(dest: Path) -> Path:
    """A package whose one input is declared [-1, 1] (a column matrix): y = 2 x, shape [-1, 1]."""
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "column",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    inputs = [{"name": "x", "dtype": "float32", "shape": [-1, 1]}]
    outputs = [{"name": "y", "dtype": "float32", "shape": [-1, 1]}]
    return write_package(dest, m, inputs, outputs, "regression", None, {"framework": "onnx"})


class InProcess:
    """Drives a roost ASGI app directly on one event loop (no sockets, no HTTP client): fast enough for 10k calls."""

    def __init__(self, app: object) -> None:
        import asyncio

        self.app = app
        self.loop = asyncio.new_event_loop()

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 40000),
        query: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, response headers, body) of one request."""
        hdrs = {"host": "127.0.0.1:8080", "content-length": str(len(body)), **(headers or {})}
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()],
            "client": client,
        }
        sent: list[dict] = []
        got = {"body": False}

        async def receive() -> dict:
            if got["body"]:
                return {"type": "http.disconnect"}
            got["body"] = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: dict) -> None:
            sent.append(msg)

        self.loop.run_until_complete(self.app(scope, receive, send))  # type: ignore[operator]
        start = sent[0]
        out_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
        return start["status"], out_headers, b"".join(m.get("body", b"") for m in sent[1:])

    def close(self) -> None:
        """Stop the app's batchers and the loop."""
        self.loop.run_until_complete(self.app.aclose())  # type: ignore[attr-defined]
        self.loop.close()
