"""The Python model servers bench/serving.py compares roost with besides MLServer and MLflow — BentoML, LitServe and
Ray Serve — and the bare ASGI echo server that is the limit line.

Every peer serves roost's own ONNX package (model.onnx, 30 one-column float inputs, output `probability`) through
onnxruntime inside its own venv (.bench/<peer>, bench/_common), one process for the model, the way each project's
quick start writes a service: JSON {"inputs": [[30 floats], ...]} in, {"probability": [...]} out.
  - BentoML 1.4.40:  @bentoml.service with a sync @bentoml.api taking an np.ndarray (`bentoml serve`);
  - LitServe 0.2.19: a LitAPI (decode_request / predict / encode_response), 1 API server, 1 worker;
  - Ray Serve 2.60:  one @serve.deployment replica whose __call__ reads the Starlette request (ray.init on 2 CPUs).
The echo ceiling (roost's own venv: uvicorn + httptools + uvloop + orjson, as `roost serve` runs) parses the same
KServe V2 body roost gets and answers a V2 response of the same size, with no model and no checks: what roost's HTTP
stack allows; roost's share of it is the part of the work per request roost spends on the stack, not on itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SERVICE_ENV = "ROOST_BENCH_MODEL"  # the model.onnx path, read by every peer app below

COMMON = '''
import os
import numpy as np
import onnxruntime as ort


def session():
    """The ONNX Runtime session of roost's package and its input names (one 1-D float column each)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.environ["ROOST_BENCH_MODEL"], opts, providers=["CPUExecutionProvider"])
    return sess, [i.name for i in sess.get_inputs()]


def run(sess, names, X):
    X = np.asarray(X, dtype=np.float32)
    return sess.run(["probability"], {n: np.ascontiguousarray(X[:, j]) for j, n in enumerate(names)})[0]
'''

BENTOML = (
    COMMON
    + """
import bentoml


@bentoml.service(workers=1)
class BC:
    def __init__(self) -> None:
        self.sess, self.names = session()

    @bentoml.api
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return run(self.sess, self.names, inputs)
"""
)

LITSERVE = (
    COMMON
    + """
import sys
import litserve as ls


class BC(ls.LitAPI):
    def setup(self, device):
        self.sess, self.names = session()

    def decode_request(self, request):
        return request["inputs"]

    def predict(self, x):
        return run(self.sess, self.names, x)

    def encode_response(self, output):
        return {"probability": output.tolist()}


if __name__ == "__main__":
    server = ls.LitServer(BC(), accelerator="cpu", workers_per_device=1, timeout=False)
    port = int(sys.argv[1])
    server.run(host="127.0.0.1", port=port, num_api_servers=1, generate_client_file=False, log_level="warning")
"""
)

RAYSERVE = (
    COMMON
    + """
import sys
import time
import ray
from ray import serve


@serve.deployment(num_replicas=1, max_ongoing_requests=64)
class BC:
    def __init__(self) -> None:
        self.sess, self.names = session()

    async def __call__(self, request):
        body = await request.json()
        return {"probability": run(self.sess, self.names, body["inputs"]).tolist()}


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
    serve.run(BC.bind(), route_prefix="/predict")
    while True:
        time.sleep(3600)
"""
)

ECHO = '''
import sys
import orjson
import uvicorn


async def app(scope, receive, send):
    """Parse a KServe V2 body; answer a V2 response with as many floats as the first input has (no model)."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    req = orjson.loads(body)
    data = req["inputs"][0]["data"]
    out = orjson.dumps(
        {
            "model_name": "bc",
            "model_version": "1",
            "id": "0123456789abcdef0123456789abcdef",
            "outputs": [{"name": "probability", "datatype": "FP32", "shape": [len(data)], "data": data}],
        }
    )
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", loop="uvloop", access_log=False,
                log_level="warning", lifespan="off")
'''

SOURCES = {"bentoml": BENTOML, "litserve": LITSERVE, "rayserve": RAYSERVE, "echo": ECHO}
NEW_PEERS = tuple(SOURCES)


def write_app(work: Path, name: str) -> Path:
    """Write the peer's app as work/<name>/service.py; returns its folder."""
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "service.py").write_text(SOURCES[name])
    return d


def command(name: str, work: Path, port: int, bin_dir: Path | None) -> tuple[list[str], dict[str, str]]:
    """The command line (run in work/<name>) and extra environment of a new peer."""
    env = {SERVICE_ENV: str(work / "roost" / "bc" / "model.onnx"), "RAY_USAGE_STATS_ENABLED": "0"}
    if name == "echo":
        return [sys.executable, "service.py", str(port)], env
    assert bin_dir is not None
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    if name == "bentoml":
        env["BENTOML_HOME"] = str(work / "bentoml" / "home")
        return [str(bin_dir / "bentoml"), "serve", "service:BC", "--host", "127.0.0.1", "--port", str(port)], env
    return [str(bin_dir / "python"), "service.py", str(port)], env


def url(name: str, port: int) -> str:
    """The inference URL of a new peer."""
    path = {"bentoml": "/predict", "litserve": "/predict", "rayserve": "/predict", "echo": "/v2/models/bc/infer"}
    return f"http://127.0.0.1:{port}{path[name]}"


def body(name: str, X: np.ndarray, cols: list[str]) -> dict:
    """The request body for the rows X (the echo server gets roost's V2 body)."""
    if name == "echo":
        return {
            "inputs": [
                {"name": c, "datatype": "FP32", "shape": [len(X)], "data": X[:, i].tolist()} for i, c in enumerate(cols)
            ]
        }
    return {"inputs": X.tolist()}


def proba(name: str, reply: object) -> np.ndarray | None:
    """P(class 1) from a new peer's reply (None for the echo server, which runs no model)."""
    if name == "echo":
        return None
    if isinstance(reply, dict):
        reply = reply["probability"]
    return np.asarray(reply, dtype=np.float64).reshape(-1)
