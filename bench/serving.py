"""Serving benchmark: roost vs MLServer, MLflow, BentoML, LitServe and Ray Serve on the same model, same load generator.

One scikit-learn pipeline (StandardScaler + LogisticRegression on breast_cancer, 30 features) is served as
  - roost:    its ONNX export (one graph input per column), `python -m roost.serve PKG`, KServe V2 JSON;
  - MLServer: the joblib pickle with mlserver-sklearn (parallel_workers 0), KServe V2 JSON, output predict_proba;
  - MLflow:   `mlflow models serve` of mlflow.sklearn.save_model(pyfunc_predict_fn="predict_proba"), dataframe_split.
Each server runs one process. wrk (loopback, bounded -d) drives concurrency 1 and 16 with 1-row and 64-row
requests; every server's answers are first checked against scikit-learn's predict_proba.
gRPC: roost (--grpc-port) and MLServer (its own gRPC port) get the same KServe V2 ModelInfer request with
raw_input_contents (roost: 30 FP32 columns; MLServer: one FP32 [N, 30] tensor, output predict_proba), driven by
h2load (nghttp2-client: one gRPC-framed body, content-type application/grpc) at concurrency 16; every answer is
first checked against scikit-learn through a real gRPC client, since h2load only sees HTTP/2 status 200.

  - BentoML, LitServe, Ray Serve: roost's ONNX package through onnxruntime (bench/_serving_peers.py);
  - echo: a bare uvicorn + httptools + orjson app answering roost's V2 body with no model, the limit line; over
    gRPC, two lines driven by the same h2load command, each answering a response of roost's size with no protobuf
    parse: a bare grpcio server of roost's old kind (thread pool, generic handler, bytes in and out;
    bench/_grpc_echo.py) and a bare ASGI app on uvicorn's HTTP/2 (zttp), the transport of roost's default gRPC
    front (bench/_grpc_h2_echo.py; row "echo-h2").
roost serves gRPC through the front $ROOST_SERVE_GRPC_FRONT names (asgi by default, or grpcio).
Peers live in their own venvs, created on first use with pinned versions (bench/_common.peer_venv): .bench/mlserver
(mlserver==1.7.1 mlserver-sklearn==1.7.1), .bench/mlflow (mlflow==3.17.2), .bench/bentoml (bentoml==1.4.40),
.bench/litserve (litserve==0.2.19), .bench/rayserve (ray[serve]==2.60.0); only the peers in --only are created.
Prints every run with the load average, the medians, roost / each peer, roost / the fastest peer, roost's share of
the echo ceilings (HTTP and gRPC) and roost's gRPC / HTTP.
Run: .venv/bin/python bench/serving.py [--duration 10] [--only roost,mlserver,litserve,echo]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _serving_peers as more
import grpc
import httpx
import numpy as np
from _common import bentoml_python, litserve_python, mlflow_python, mlserver_python, rayserve_python

from roost.serve.grpc.h2 import STREAM_CAP
from roost.serve.grpc.proto import message

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = {
    "mlserver": mlserver_python,
    "mlflow": mlflow_python,
    "bentoml": bentoml_python,
    "litserve": litserve_python,
    "rayserve": rayserve_python,
}
ALL = ("roost", "mlserver", "mlflow", "bentoml", "litserve", "rayserve", "echo")
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("ROOST_BENCH_BODY"), "rb"); wrk.body = f:read("*all"); f:close()
"""
GRPC_PEERS = ("roost", "mlserver", "echo")
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"


@functools.cache
def peer_bin(peer: str) -> Path:
    """The bin/ folder of a peer's venv under .bench/, created with pinned versions on first use."""
    return PEER_PYTHON[peer]().parent


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(work: Path, peers: list[str]) -> tuple[object, np.ndarray, list[str]]:
    """Fit the pipeline, write model.joblib, the roost package and the MLServer/MLflow model folders."""
    import joblib
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = load_breast_cancer()
    X = d.data.astype(np.float32)
    cols = [re.sub(r"[^0-9a-zA-Z]+", "_", n).strip("_") for n in d.feature_names]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, d.target)
    joblib.dump(pipe, work / "model.joblib")
    # roost: ONNX with one 1-D input per column, output probability = P(class 1)
    m = convert_sklearn(
        pipe,
        initial_types=[("X", FloatTensorType([None, 30]))],
        options={id(pipe.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    g = m.graph
    g.input.remove([i for i in g.input if i.name == "X"][0])
    g.initializer.extend(
        [helper.make_tensor("ax1", TensorProto.INT64, [1], [1]), helper.make_tensor("one", TensorProto.INT64, [], [1])]
    )
    pre = [helper.make_node("Unsqueeze", [c, "ax1"], [c + "_2d"]) for c in cols]
    pre.append(helper.make_node("Concat", [c + "_2d" for c in cols], ["X"], axis=1))
    for n in reversed(pre):
        g.node.insert(0, n)
    g.input.extend([helper.make_tensor_value_info(c, TensorProto.FLOAT, ["N"]) for c in cols])
    g.node.append(helper.make_node("Gather", ["probabilities", "one"], ["probability"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"]))
    pkg = work / "roost" / "bc"
    pkg.mkdir(parents=True)
    onnx.save(m, str(pkg / "model.onnx"))
    (pkg / "signature.json").write_text(
        json.dumps(
            {
                "task": "binary",
                "classes": [0, 1],
                "label": "target",
                "inputs": [{"name": c, "dtype": "float32", "shape": [-1]} for c in cols],
                "outputs": [{"name": "probability", "dtype": "float32", "shape": [-1]}],
            }
        )
    )
    (pkg / "roost-model.yaml").write_text(
        f"format_version: 1\nframework: sklearn\nmodel_type: logreg\ntask: binary\n"
        f"classes: [0, 1]\nfeatures: {json.dumps(cols)}\nfeature_refs: []\n"
    )
    ms = work / "mlserver" / "bc"
    ms.mkdir(parents=True)
    (ms / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "bc",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(work / "model.joblib")},
            }
        )
    )
    if "mlflow" not in peers:
        return pipe, X, cols
    subprocess.run(
        [
            str(peer_bin("mlflow") / "python"),
            "-c",
            "import sys, joblib, mlflow.sklearn; mlflow.sklearn.save_model(joblib.load(sys.argv[1]), "
            "sys.argv[2], pyfunc_predict_fn='predict_proba')",
            str(work / "model.joblib"),
            str(work / "mlflow"),
        ],
        check=True,
        capture_output=True,
    )
    return pipe, X, cols


class Peer:
    """One server under test: how to start it, what to send, how to read P(class 1) back."""

    def __init__(self, name: str, work: Path, cols: list[str], replicas: int) -> None:
        self.name, self.work, self.cols, self.replicas = name, work, cols, replicas
        self.port = free_port()
        self.grpc_port = free_port() if name in GRPC_PEERS else None
        self.proc: subprocess.Popen | None = None
        self.grpc_proc: subprocess.Popen | None = None  # echo: the bare grpcio server (bench/_grpc_echo.py)
        self.h2_port = free_port() if name == "echo" else None
        self.h2_proc: subprocess.Popen | None = None  # echo: the bare ASGI HTTP/2 server (bench/_grpc_h2_echo.py)
        self.cwd = work

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The server command line and extra environment."""
        if self.name in more.NEW_PEERS:
            self.cwd = more.write_app(self.work, self.name)
            return more.command(self.name, self.work, self.port, None if self.name == "echo" else peer_bin(self.name))
        if self.name == "roost":
            return (
                [
                    sys.executable,
                    "-m",
                    "roost.serve",
                    str(self.work / "roost" / "bc"),
                    "--port",
                    str(self.port),
                    "--replicas",
                    str(self.replicas),
                    "--grpc-port",
                    str(self.grpc_port),
                ],
                {"PYTHONPATH": str(ROOT / "src")},
            )
        if self.name == "mlserver":
            (self.work / "mlserver" / "settings.json").write_text(
                json.dumps(
                    {
                        "parallel_workers": 0,
                        "http_port": self.port,
                        "grpc_port": self.grpc_port,
                        "metrics_port": free_port(),
                        "host": "127.0.0.1",
                        "debug": False,
                    }
                )
            )
            return [str(peer_bin("mlserver") / "mlserver"), "start", str(self.work / "mlserver")], self._path(
                "mlserver"
            )
        return (
            [
                str(peer_bin("mlflow") / "mlflow"),
                "models",
                "serve",
                "-m",
                str(self.work / "mlflow"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--env-manager",
                "local",
                "-w",
                str(self.replicas),
            ],
            self._path("mlflow"),
        )

    @staticmethod
    def _path(peer: str) -> dict[str, str]:
        """PATH with the peer's venv first (mlflow runs `uvicorn` from PATH)."""
        return {
            "PATH": f"{peer_bin(peer)}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(peer_bin(peer).parent),
        }

    @property
    def url(self) -> str:
        """The inference URL."""
        if self.name in more.NEW_PEERS:
            return more.url(self.name, self.port)
        return {
            "roost": f"http://127.0.0.1:{self.port}/v2/models/bc/infer",
            "mlserver": f"http://127.0.0.1:{self.port}/v2/models/bc/infer",
            "mlflow": f"http://127.0.0.1:{self.port}/invocations",
        }[self.name]

    def body(self, X: np.ndarray) -> dict:
        """The request body for the rows X."""
        if self.name in more.NEW_PEERS:
            return more.body(self.name, X, self.cols)
        if self.name == "roost":
            return {
                "inputs": [
                    {"name": c, "datatype": "FP32", "shape": [len(X)], "data": X[:, i].tolist()}
                    for i, c in enumerate(self.cols)
                ]
            }
        if self.name == "mlserver":
            return {
                "inputs": [
                    {"name": "predict", "datatype": "FP32", "shape": list(X.shape), "data": X.reshape(-1).tolist()}
                ],
                "outputs": [{"name": "predict_proba"}],
            }
        return {"dataframe_split": {"columns": self.cols, "data": X.tolist()}}

    def grpc_request(self, X: np.ndarray) -> bytes:
        """A serialized ModelInferRequest for the rows X (raw_input_contents, little-endian FP32)."""
        req = message("ModelInferRequest")(model_name="bc")
        X = np.ascontiguousarray(X, dtype="<f4")
        if self.name in ("roost", "echo"):
            for i, c in enumerate(self.cols):
                req.inputs.add(name=c, datatype="FP32", shape=[len(X)])
                req.raw_input_contents.append(np.ascontiguousarray(X[:, i]).tobytes())
        else:
            req.inputs.add(name="predict", datatype="FP32", shape=list(X.shape))
            req.raw_input_contents.append(X.tobytes())
            req.outputs.add(name="predict_proba")
        return req.SerializeToString()

    def grpc_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) for X asked over gRPC with a real client (the check before h2load replays the bytes)."""
        resp_type = message("ModelInferResponse")
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as ch:
            call = ch.unary_unary(GRPC_PATH, request_serializer=None, response_deserializer=resp_type.FromString)
            resp = call(self.grpc_request(X), timeout=60)
        out = resp.outputs[0]
        dtype = {"FP32": "<f4", "FP64": "<f8"}[out.datatype]
        if resp.raw_output_contents:
            arr = np.frombuffer(resp.raw_output_contents[0], dtype=dtype)
        else:
            arr = np.asarray(out.contents.fp64_contents or out.contents.fp32_contents, dtype=dtype)
        arr = arr.reshape(list(out.shape))
        return arr if self.name == "roost" else arr[:, 1]

    def start_grpc_echo(self, X: np.ndarray) -> None:
        """(echo) Start the gRPC ceilings answering roost's ModelInfer request of 1 and 64 rows with a response of
        the size roost answers: a bare grpcio thread-pool server (bench/_grpc_echo.py) and a bare ASGI app on
        uvicorn's HTTP/2 (bench/_grpc_h2_echo.py)."""
        pairs = []
        for rows in (1, 64):
            resp = message("ModelInferResponse")(model_name="bc", model_version="1", id="0" * 32)
            resp.outputs.add(name="probability", datatype="FP32", shape=[rows])
            resp.outputs.add(name="label", datatype="INT64", shape=[rows])
            resp.raw_output_contents.extend([bytes(4 * rows), bytes(8 * rows)])
            req, reply = self.work / f"echo-{rows}.req", self.work / f"echo-{rows}.reply"
            req.write_bytes(self.grpc_request(X[:rows]))
            reply.write_bytes(resp.SerializeToString())
            pairs.append(f"{req}={reply}")
        procs = []
        for script, port in (("_grpc_echo.py", self.grpc_port), ("_grpc_h2_echo.py", self.h2_port)):
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / script), str(port), *pairs],
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},  # (the ASGI echo uses roost's HTTP/2 transport)
                stdout=subprocess.PIPE,
                stderr=self._log,
                start_new_session=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"the gRPC echo server {script} did not start (see echo.log)")
        self.grpc_proc, self.h2_proc = procs

    def grpc_targets(self) -> list[tuple[str, int, int]]:
        """(row label, port, session pid) of each gRPC server this peer runs (echo: grpcio's and the ASGI one)."""
        assert self.grpc_port is not None
        out = [(self.name, self.grpc_port, self.grpc_pid)]
        if self.h2_proc is not None and self.h2_port is not None:
            out.append(("echo-h2", self.h2_port, self.h2_proc.pid))
        return out

    @property
    def grpc_pid(self) -> int:
        """The process (session leader) that serves gRPC."""
        proc = self.grpc_proc or self.proc
        assert proc is not None
        return proc.pid

    def positive_proba(self, reply: dict) -> np.ndarray | None:
        """P(class 1) from a reply (None from the echo server)."""
        if self.name in more.NEW_PEERS:
            return more.proba(self.name, reply)
        if self.name == "roost":
            return np.array(reply["outputs"][0]["data"])
        if self.name == "mlserver":
            out = reply["outputs"][0]
            return np.array(out["data"]).reshape(out["shape"])[:, 1]
        return np.array(reply["predictions"])[:, 1]

    def start(self, log: Path) -> None:
        """Start the server and wait until it answers a real request."""
        cmd, env = self.command()
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.post(self.url, json=self.body(np.zeros((1, 30), np.float32)), timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} did not start:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server's process group and every process it started (Ray's start sessions of their own)."""
        for side in (self.grpc_proc, self.h2_proc):
            if side is not None:
                side.terminate()
                side.wait(timeout=15)
        if self.proc is None:
            return
        pids = server_pids(self.proc.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


def _ms(text: str) -> float:
    """'405.00us' / '1.2ms' / '1.1s' -> milliseconds."""
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def _procs() -> dict[int, list[str]]:
    """/proc/PID/stat fields after the command name, by pid."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            out[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
    return out


def server_pids(sid: int, procs: dict[int, list[str]] | None = None) -> set[int]:
    """The processes of session `sid` (a server and its workers) and all their descendants (Ray starts its
    raylet, GCS and replicas in sessions of their own)."""
    procs = _procs() if procs is None else procs
    pids = {pid for pid, f in procs.items() if int(f[3]) == sid}  # f[3] = session id (6th field of stat)
    grew = True
    while grew:
        kids = {pid for pid, f in procs.items() if int(f[1]) in pids} - pids  # f[1] = parent pid
        pids |= kids
        grew = bool(kids)
    return pids


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) used so far by a server's processes (server_pids)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = _procs()
    return sum(int(procs[p][11]) + int(procs[p][12]) for p in server_pids(sid, procs)) / tick


def wrk(url: str, body_file: Path, lua: Path, conns: int, seconds: int, sid: int | None = None) -> dict[str, float]:
    """Run wrk with one thread; req/s, p50/p99 (ms), non-2xx + socket errors, server CPU ms per request."""
    cpu0 = session_cpu(sid) if sid else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        env={**os.environ, "ROOST_BENCH_BODY": str(body_file)},
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    cpu = session_cpu(sid) - cpu0 if sid else float("nan")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(pct["50"]),
        "p99": _ms(pct["99"]),
        "cpu_ms": 1000.0 * cpu / max(n, 1),
        "errors": (int(bad.group(1)) if bad else 0) + (sum(int(x) for x in errs.groups()) if errs else 0),
    }


H2LOAD_CHUNK_S = 2  # seconds per h2load run: a connection stays under the ASGI front's STREAM_CAP calls up to 32k req/s


def h2load(port: int, body_file: Path, conns: int, seconds: int, sid: int | None = None) -> dict[str, float]:
    """Run h2load (one thread, one stream per connection) replaying a gRPC ModelInfer; req/s, mean latency (ms; h2load
    reports no percentiles), failures, server CPU ms per request. Runs of H2LOAD_CHUNK_S seconds on fresh connections
    back to back: h2load does not reconnect, and a connection of the ASGI front (uvicorn's HTTP/2, zttp) is moved on
    with GOAWAY after STREAM_CAP calls, which would stop that client for the rest of a longer run."""
    cpu0 = session_cpu(sid) if sid else 0.0
    done = bad = 0
    took = lat_sum = 0.0
    left = seconds
    while left > 0:
        chunk = min(H2LOAD_CHUNK_S, left)
        left -= chunk
        out = subprocess.run(
            [
                "h2load",
                "-t1",
                f"-c{conns}",
                "-m1",
                f"-D{chunk}",
                "-d",
                str(body_file),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                f"http://127.0.0.1:{port}{GRPC_PATH}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=chunk + 60,
        ).stdout
        m = re.search(
            r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out
        )
        assert m, out
        n = int(m.group(2))
        if n >= conns * (STREAM_CAP - 100):
            print(f"  note: {n} calls on {conns} connections in {chunk} s: some may have hit STREAM_CAP", flush=True)
        done += n
        bad += int(m.group(4)) + int(m.group(5))
        took += _ms(re.search(r"finished in ([\d.]+(?:us|ms|s)),", out).group(1)) / 1000.0
        lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
        lat_sum += _ms(lat.group(3)) * n if lat else float("nan")
    cpu = session_cpu(sid) - cpu0 if sid else float("nan")
    return {
        "rps": done / took if took else float("nan"),
        "p50": lat_sum / max(done, 1),  # the mean (h2load prints min, max, mean, sd)
        "p99": float("nan"),
        "cpu_ms": 1000.0 * cpu / max(done, 1),
        "errors": float(bad),
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric median over repeated runs (errors are summed)."""
    out = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
    out["errors"] = float(sum(r["errors"] for r in runs))
    return out


def main() -> None:
    """Train, check every server against scikit-learn, load them in turns with wrk, print medians and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of wrk before each measured run")
    ap.add_argument("--repeats", type=int, default=3, help="measured runs per case and server (median is kept)")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated peers (echo: the bare ASGI ceiling)")
    ap.add_argument("--replicas", type=int, default=1, help="server processes for every peer")
    args = ap.parse_args()
    names = args.only.split(",")
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        ap.error(f"unknown peers {unknown}; choose from {','.join(ALL)}")
    for name in names:
        if name in PEER_PYTHON:
            peer_bin(name)  # create the peer's venv before anything is timed
    work = Path(tempfile.mkdtemp(prefix="roost-bench-serving-"))
    lua = work / "post.lua"
    lua.write_text(LUA)
    pipe, X, cols = train(work, names)
    expect = pipe.predict_proba(X[:64])[:, 1]
    cpu = (
        next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    print(
        f"machine: {os.cpu_count()} x {cpu}, load {os.getloadavg()[0]:.1f}; {args.repeats} x {args.duration}s per case "
        "and server, servers measured in turns, 1 wrk thread, medians reported; roost's gRPC front: "
        f"{os.environ.get('ROOST_SERVE_GRPC_FRONT') or 'asgi (default)'}",
        flush=True,
    )
    peers = [Peer(n, work, cols, args.replicas) for n in names]
    grpc_peers = [p for p in peers if p.grpc_port is not None and shutil.which("h2load")]
    if len(grpc_peers) < sum(p.grpc_port is not None for p in peers):
        print("note: h2load is not installed (apt-get install nghttp2-client): gRPC is not measured", flush=True)
    runs: dict[tuple[str, str, int, int], list[dict[str, float]]] = {}
    cases = [("http", rows, conns) for rows in (1, 64) for conns in (1, 16)]
    cases += [("grpc", rows, 16) for rows in (1, 64) if grpc_peers]
    try:
        for peer in peers:
            peer.start(work / f"{peer.name}.log")
            reply = httpx.post(peer.url, json=peer.body(X[:64]), timeout=30).json()
            got = peer.positive_proba(reply)
            if got is None:
                print(f"{peer.name}: no model (the HTTP stack's ceiling)", flush=True)
            else:
                diff = float(np.abs(got - expect).max())
                print(f"{peer.name}: answers match scikit-learn predict_proba (max abs diff {diff:.1e})", flush=True)
                assert diff < 1e-5, f"{peer.name} answers differ from scikit-learn by {diff}"
            for rows in (1, 64):
                (work / f"{peer.name}-{rows}.json").write_text(json.dumps(peer.body(X[:rows])))
            if peer in grpc_peers and peer.name == "echo":
                peer.start_grpc_echo(X)
            elif peer in grpc_peers:
                diff = float(np.abs(peer.grpc_proba(X[:64]) - expect).max())
                print(f"{peer.name}: gRPC answers match scikit-learn (max abs diff {diff:.1e})", flush=True)
                assert diff < 1e-5, f"{peer.name} gRPC answers differ from scikit-learn by {diff}"
            if peer in grpc_peers:
                for rows in (1, 64):
                    msg = peer.grpc_request(X[:rows])
                    (work / f"{peer.name}-{rows}.grpc").write_bytes(b"\0" + len(msg).to_bytes(4, "big") + msg)
        for rep in range(args.repeats):
            for proto, rows, conns in cases:
                order = peers[rep % len(peers) :] + peers[: rep % len(peers)]
                for peer in order:
                    if proto == "grpc" and peer not in grpc_peers:
                        continue
                    if proto == "http":
                        body = work / f"{peer.name}-{rows}.json"
                        wrk(peer.url, body, lua, conns, args.warmup)
                        r = wrk(peer.url, body, lua, conns, args.duration, sid=peer.proc.pid)
                        measured = [(peer.name, r)]
                    else:
                        body = work / f"{peer.name}-{rows}.grpc"
                        measured = []
                        for label, port, pid in peer.grpc_targets():
                            h2load(port, body, conns, args.warmup)
                            measured.append((label, h2load(port, body, conns, args.duration, sid=pid)))
                    for label, r in measured:
                        runs.setdefault((label, proto, conns, rows), []).append(r)
                        print(
                            f"  run {rep + 1}: load {os.getloadavg()[0]:4.1f} {label:8s} {proto:4s} c={conns:<2d}"
                            f" rows={rows:<2d}"
                            f" {r['rps']:8.0f} req/s"
                            f"  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  cpu {r['cpu_ms']:.3f} ms/req"
                            f"  errors {r['errors']:.0f}",
                            flush=True,
                        )
    finally:
        for peer in peers:
            peer.stop()
    res = {k: median_of(v) for k, v in runs.items()}
    print("\n| server | protocol | conc | rows | req/s | p50 ms | p99 ms | server CPU ms/req | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, proto, conns, rows), r in sorted(
        res.items(), key=lambda kv: (kv[0][1] != "http", kv[0][3], kv[0][2], ([*names, "echo-h2"]).index(kv[0][0]))
    ):
        print(
            f"| {name} | {proto} | {conns} | {rows} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | "
            f"{r['cpu_ms']:.3f} | {r['errors']:.0f} |"
        )
    print("(gRPC p50 column: h2load's mean latency; it reports no percentiles)")
    ratios = []
    models = [n for n in names if n not in ("roost", "echo")]
    for other in models:
        for proto, rows, conns in cases:
            a, b = res.get(("roost", proto, conns, rows)), res.get((other, proto, conns, rows))
            if a is None or b is None:
                continue
            q, c = a["rps"] / b["rps"], b["cpu_ms"] / a["cpu_ms"]
            print(f"roost/{other} {proto} c={conns} rows={rows}: {q:.2f}x req/s, {c:.2f}x less CPU per request")
            if conns == 16 and proto == "http":
                ratios.append(q)
    for proto, rows, conns in cases:
        mine = res.get(("roost", proto, conns, rows))
        seen = [(res[(n, proto, conns, rows)]["rps"], n) for n in models if (n, proto, conns, rows) in res]
        if mine is None or not seen:
            continue
        best, who = max(seen)
        print(f"roost / fastest peer ({who}) {proto} c={conns} rows={rows}: {mine['rps'] / best:.2f}x req/s")
    shares = [("http", r, c, "the echo ceiling, HTTP", "echo", "echo") for _, r, c in cases if _ == "http"]
    shares += [("grpc", r, 16, "the gRPC ceiling (bare grpcio),", "ceiling", "echo") for r in (1, 64)]
    shares += [("grpc", r, 16, "the gRPC ceiling (bare ASGI on HTTP/2),", "h2 echo", "echo-h2") for r in (1, 64)]
    for proto, rows, conns, title, label, ref in shares:
        mine, echo = res.get(("roost", proto, conns, rows)), res.get((ref, proto, conns, rows))
        if mine is not None and echo is not None:
            print(
                f"roost's share of {title} c={conns} rows={rows}: {100 * mine['rps'] / echo['rps']:.0f} % of req/s "
                f"({echo['rps']:.0f}); {label} CPU {echo['cpu_ms']:.3f} vs roost {mine['cpu_ms']:.3f} ms/req"
            )
    for rows in (1, 64):
        g, h = res.get(("roost", "grpc", 16, rows)), res.get(("roost", "http", 16, rows))
        if g is not None and h is not None:
            print(
                f"roost gRPC/HTTP c=16 rows={rows}: {g['rps'] / h['rps']:.2f}x req/s, CPU {g['cpu_ms']:.3f} vs "
                f"{h['cpu_ms']:.3f} ms/req"
            )
    for rows in (1, 64):
        for name in names:
            if (name, "http", 1, rows) in res:
                print(f"{name} HTTP p50 at c=1, {rows} row(s): {res[(name, 'http', 1, rows)]['p50']:.3f} ms")
    print(f"ratio: {min(ratios):.2f}" if ratios else "ratio: n/a")


if __name__ == "__main__":
    main()
