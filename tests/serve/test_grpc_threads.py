"""The gRPC server answers ModelInfer in its pool threads (roost.serve.grpc.server): concurrent calls from many
client threads answer equal to ONNX Runtime, mixed with calls that need the event loop (BYTES inputs), and the
in-flight call count that ServeApp.alone reads returns to zero (a lost update would leave HTTP requests queued on
the batcher for good)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
from servekit import float_columns_request
from test_serve_ids_labels import grpc_app

from roost.serve.worker import create_app


def _strings(words: list[bytes]) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="strings")
    req.inputs.add(name="x", datatype="FP32", shape=[len(words)]).contents.fp32_contents.extend([1.0] * len(words))
    req.inputs.add(name="country", datatype="BYTES", shape=[len(words)]).contents.bytes_contents.extend(words)
    return req


@pytest.mark.parametrize("front", ["asgi", "grpcio"])
def test_concurrent_calls_in_pool_threads_answer_like_onnxruntime_and_leave_no_call_counted(pkgs, bc_data, front):
    X, _, cols = bc_data
    sess = ort.InferenceSession(str(pkgs["bc"] / "model.onnx"))
    app = create_app([str(pkgs["bc"]), f"strings={pkgs['strings']}"])
    words = [b"a", b"c", b"zz"]
    (ref_strings,) = ort.InferenceSession(str(pkgs["strings"] / "model.onnx")).run(
        ["prediction"], {"x": np.ones(3, np.float32), "country": np.array([w.decode() for w in words], object)}
    )
    with grpc_app(app, front) as addr, grpc.insecure_channel(addr) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)

        def call(i: int) -> None:
            rows = X[i % 50 : i % 50 + (1 if i % 3 else 64)]
            resp = stub.ModelInfer(float_columns_request(cols, rows), timeout=60)
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


def test_a_worker_with_an_open_stream_stops_within_its_grace(pkgs, bc_data, tmp_path):
    """Pool threads never keep a worker alive: an open ModelStreamInfer is cut at the end of --grace, and the
    process exits cleanly (the pool's threads are joined at exit)."""
    import queue
    import time

    import tritonclient.grpc as tg
    from servekit import Server, free_port

    X, _, cols = bc_data
    port = free_port()
    srv = Server([str(pkgs["bc"])], "--grpc-port", str(port), "--grace", "2", log=tmp_path / "srv.log")
    srv.wait_ready()
    g = tg.InferenceServerClient(f"127.0.0.1:{port}")
    got: queue.Queue = queue.Queue()
    g.start_stream(callback=lambda result, error: got.put((result, error)))
    inputs = []
    for i, c in enumerate(cols):
        inp = tg.InferInput(c, [1], "FP32")
        inp.set_data_from_numpy(np.ascontiguousarray(X[:1, i]))
        inputs.append(inp)
    g.async_stream_infer("bc", inputs)
    result, error = got.get(timeout=60)
    assert error is None, error
    (want,) = ort.InferenceSession(str(pkgs["bc"] / "model.onnx")).run(
        ["probability"], {c: X[:1, i] for i, c in enumerate(cols)}
    )
    np.testing.assert_allclose(result.as_numpy("probability"), want, rtol=1e-6, atol=1e-7)
    t0 = time.monotonic()
    code = srv.stop()  # the stream is still open
    took = time.monotonic() - t0
    g.close()
    assert code == 0, (tmp_path / "srv.log").read_text()[-2000:]
    assert took < 30, took  # grace 2 s + the supervisor's own shutdown; a thread stuck on the stream hangs to 60 s


@pytest.mark.parametrize("front", ["asgi", "grpcio"])
def test_calls_that_need_the_event_loop_are_answered_there(ws, pkgs, bc_data, tmp_path, front):
    """With a shadow (mirrored from the event loop) a ModelInfer is handed to the loop: answered by the primary,
    equal to ONNX Runtime, and mirrored to the shadow."""
    import time

    from prometheus_client.parser import text_string_to_metric_families

    import roost

    roost.register_model(None, "churn", str(pkgs["bc"]))
    roost.register_model(None, "churn", str(pkgs["bc2"]))
    roost.set_alias("churn", 2, "candidate")

    X, _, cols = bc_data
    (want,) = ort.InferenceSession(str(pkgs["bc"] / "model.onnx")).run(
        ["probability"], {c: X[:8, i] for i, c in enumerate(cols)}
    )
    app = create_app(["churn/1"], shadow=["churn@candidate"], log_dir=str(tmp_path / "logs"))
    with grpc_app(app, front) as addr, grpc.insecure_channel(addr) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        req = float_columns_request(cols, X[:8])
        req.model_name = "churn"
        for _ in range(5):
            resp = stub.ModelInfer(req, timeout=60)
            assert resp.model_version == "1"
            np.testing.assert_allclose(np.frombuffer(resp.raw_output_contents[0], "<f4"), want, rtol=1e-6, atol=1e-7)

        def mirrored() -> float:
            text = app.metrics.exposition()[0].decode()
            return sum(
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "roost_shadow_requests_total" and s.labels.get("outcome") == "mirrored"
            )

        deadline = time.monotonic() + 30
        while mirrored() < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mirrored() == 5
