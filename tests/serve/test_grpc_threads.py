"""The gRPC server answers ModelInfer in its pool threads (roost.serve.grpc.server): concurrent calls from many
client threads answer equal to ONNX Runtime, mixed with calls that need the event loop (BYTES inputs), and the
in-flight call count that ServeApp.alone reads returns to zero (a lost update would leave HTTP requests queued on
the batcher for good)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import onnxruntime as ort
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
from test_serve_ids_labels import grpc_app

from roost.serve.worker import create_app


def _bc(cols: list[str], X: np.ndarray) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="bc")
    for i, c in enumerate(cols):
        req.inputs.add(name=c, datatype="FP32", shape=[len(X)])
        req.raw_input_contents.append(np.ascontiguousarray(X[:, i], "<f4").tobytes())
    return req


def _strings(words: list[bytes]) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="strings")
    req.inputs.add(name="x", datatype="FP32", shape=[len(words)]).contents.fp32_contents.extend([1.0] * len(words))
    req.inputs.add(name="country", datatype="BYTES", shape=[len(words)]).contents.bytes_contents.extend(words)
    return req


def test_concurrent_calls_in_pool_threads_answer_like_onnxruntime_and_leave_no_call_counted(pkgs, bc_data):
    X, _, cols = bc_data
    sess = ort.InferenceSession(str(pkgs["bc"] / "model.onnx"))
    app = create_app([str(pkgs["bc"]), f"strings={pkgs['strings']}"])
    words = [b"a", b"c", b"zz"]
    (ref_strings,) = ort.InferenceSession(str(pkgs["strings"] / "model.onnx")).run(
        ["prediction"], {"x": np.ones(3, np.float32), "country": np.array([w.decode() for w in words], object)}
    )
    with grpc_app(app) as addr, grpc.insecure_channel(addr) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)

        def call(i: int) -> None:
            rows = X[i % 50 : i % 50 + (1 if i % 3 else 64)]
            resp = stub.ModelInfer(_bc(cols, rows), timeout=60)
            got = np.frombuffer(resp.raw_output_contents[0], "<f4")
            (want,) = sess.run(["probability"], {c: rows[:, j] for j, c in enumerate(cols)})
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            if i % 7 == 0:  # a BYTES input: general decoder, run on the event loop
                resp = stub.ModelInfer(_strings(words), timeout=60)
                np.testing.assert_allclose(np.frombuffer(resp.raw_output_contents[0], "<f4"), ref_strings, rtol=1e-6)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(call, range(400)))
        assert app.grpc_calls == 0
        assert app.alone()
