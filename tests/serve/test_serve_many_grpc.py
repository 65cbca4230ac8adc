"""gRPC of a many-model server (`roost serve --all --grpc-port`): a model's first gRPC request loads it, as HTTP's
does (before, a model no HTTP request had loaded in that worker answered UNAVAILABLE)."""

from __future__ import annotations

import queue

import numpy as np
import pytest
import tritonclient.grpc as tg
from manykit import ort_probability, register_many
from servekit import Server, free_port
from tritonclient.utils import InferenceServerException


def _inputs(cols: list[str], X: np.ndarray) -> list[tg.InferInput]:
    out = []
    for i, c in enumerate(cols):
        inp = tg.InferInput(c, [len(X)], "FP32")
        inp.set_data_from_numpy(np.ascontiguousarray(X[:, i]))
        out.append(inp)
    return out


def test_first_grpc_request_loads_the_model_and_answers_like_onnxruntime(ws, pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    many = register_many(pkgs["bc"], tmp_path / "many", ["g0", "g1", "g2", "g3"])
    port = free_port()
    srv = Server([], "--all", "--replicas", "1", "--grpc-port", str(port), log=tmp_path / "srv.log")
    try:
        srv.wait_ready()
        g = tg.InferenceServerClient(f"127.0.0.1:{port}")
        try:
            for rows in (1, 64):
                for name in ("g0", "g1@prod", "g2"):
                    base = name.split("@")[0]
                    got = g.infer(name, _inputs(cols, X[:rows])).as_numpy("probability")
                    want = ort_probability(many[base], cols, X[:rows])
                    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            assert g.is_model_ready("g1")
            meta = g.get_model_metadata("g2")
            assert meta.name == "g2" and meta.versions == ["1"]
            got_stream: queue.Queue = queue.Queue()
            g.start_stream(callback=lambda result, error: got_stream.put((result, error)))
            g.async_stream_infer("g3", _inputs(cols, X[:2]))  # a stream's request loads its model too
            result, error = got_stream.get(timeout=60)
            g.stop_stream()
            assert error is None, error
            want = ort_probability(many["g3"], cols, X[:2])
            np.testing.assert_allclose(result.as_numpy("probability"), want, rtol=1e-6, atol=1e-7)
            with pytest.raises(InferenceServerException) as err:
                g.infer("nosuch", _inputs(cols, X[:1]))
            assert "NOT_FOUND" in str(err.value.status()) and "not served here" in err.value.message()
        finally:
            g.close()
        with srv.client() as c:  # loaded by gRPC: HTTP sees them resident, each loaded once
            states = {r["name"]: r["state"] for r in c.post("/v2/repository/index").json()}
            assert states == {"g0@prod": "READY", "g1@prod": "READY", "g2@prod": "READY", "g3@prod": "READY"}
    finally:
        srv.stop()
