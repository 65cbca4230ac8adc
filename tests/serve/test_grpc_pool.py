"""The gRPC server's call pool (roost.serve.grpc.pool): 16 concurrent clients are answered by a few hot threads
(each woken thread is a context switch: #35), yet calls that wait — open ModelStreamInfer streams — never starve
the others, and the pool itself behaves as an Executor (results, exceptions, shutdown)."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc.service_pb2_grpc as pbg
from servekit import float_columns_request
from test_serve_ids_labels import grpc_app

from roost.serve.grpc.pool import CallPool
from roost.serve.grpc.server import HOT_THREADS
from roost.serve.worker import create_app


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("roost-grpc")}


def test_sixteen_concurrent_clients_are_answered_by_the_hot_threads(pkgs, bc_data):
    """(grpcio's front: the ASGI front answers on the event loop, with no pool threads)"""
    X, _, cols = bc_data
    (want,) = ort.InferenceSession(str(pkgs["bc"] / "model.onnx")).run(
        ["probability"], {c: X[:1, i] for i, c in enumerate(cols)}
    )
    before = _pool_threads()
    app = create_app([str(pkgs["bc"])])
    with grpc_app(app, "grpcio") as addr:
        channels = [grpc.insecure_channel(addr) for _ in range(16)]  # 16 connections, as h2load -c16
        try:

            def client(k: int) -> None:
                stub = pbg.GRPCInferenceServiceStub(channels[k])
                for _ in range(25):
                    resp = stub.ModelInfer(float_columns_request(cols, X[:1]), timeout=60)
                    got = np.frombuffer(resp.raw_output_contents[0], "<f4")
                    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

            with ThreadPoolExecutor(16) as clients:
                list(clients.map(client, range(16)))
            started = _pool_threads() - before
        finally:
            for ch in channels:
                ch.close()
    assert 0 < len(started) <= HOT_THREADS, sorted(t.name for t in started)


@pytest.mark.parametrize("front", ["asgi", "grpcio"])
def test_open_streams_beyond_the_hot_threads_do_not_starve_unary_calls(pkgs, bc_data, front):
    """HOT_THREADS + 2 streams each hold a pool thread between messages; a ModelInfer is still answered, and so
    is every stream's next message."""
    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    n = HOT_THREADS + 2
    with grpc_app(app, front) as addr, grpc.insecure_channel(addr) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        feeds: list[queue.Queue] = [queue.Queue() for _ in range(n)]

        def messages(q: queue.Queue):
            while (item := q.get()) is not None:
                yield item

        streams = [stub.ModelStreamInfer(messages(q), timeout=60) for q in feeds]
        try:
            for q, s in zip(feeds, streams):  # every stream open and answered once: each holds a thread now
                q.put(float_columns_request(cols, X[:1]))
                assert not next(s).error_message
            t0 = time.monotonic()
            resp = stub.ModelInfer(float_columns_request(cols, X[:2]), timeout=20)
            assert len(np.frombuffer(resp.raw_output_contents[0], "<f4")) == 2
            assert time.monotonic() - t0 < 20
            for q, s in zip(feeds, streams):
                q.put(float_columns_request(cols, X[:3]))
                assert not next(s).error_message
        finally:
            for q in feeds:
                q.put(None)
            for s in streams:
                for _ in s:
                    pass


def test_the_pool_is_an_executor():
    pool = CallPool(2, 4, name="roost-test-pool")
    try:
        assert pool.submit(pow, 2, 10).result(10) == 1024
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(10)
        assert pool.threads <= 2
        gate = threading.Event()

        def wait_in_block() -> str:
            with pool.blocking(), pool.blocking():  # nested blocks count once
                gate.wait(10)
            return "done"

        waiting = [pool.submit(wait_in_block) for _ in range(2)]  # both hot threads wait ...
        assert pool.submit(lambda: "free").result(10) == "free"  # ... and another thread takes this call
        gate.set()
        assert [f.result(10) for f in waiting] == ["done", "done"]
        deadline = time.monotonic() + 10
        while pool.threads > 2 and time.monotonic() < deadline:  # the extra threads leave once idle again
            pool.submit(lambda: None).result(10)
            time.sleep(0.01)
        assert pool.threads <= 2
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    assert pool.threads == 0
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 2, 2)


def test_shutdown_cancels_queued_calls():
    pool = CallPool(1, 1, name="roost-test-pool")
    gate, running = threading.Event(), threading.Event()

    def hold() -> bool:
        running.set()
        return gate.wait(10)

    busy = pool.submit(hold)
    assert running.wait(10)
    queued = pool.submit(pow, 3, 3)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert busy.result(10) is True
    assert queued.cancelled()
