"""Request ids over gRPC metadata, TF-Serving version labels, and the gRPC port in a KServe export (#18 leftovers)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import orjson
import pytest
import tritonclient.grpc.service_pb2 as pb
import tritonclient.grpc.service_pb2_grpc as pbg
import yaml
from servekit import InProcess, free_port

from roost.serve.grpc import start_server
from roost.serve.rollout import share
from roost.serve.worker import create_app


@pytest.fixture
def churn(ws, pkgs):
    """churn/1 (bc) and churn/2 (bc2, different weights): prod -> 1, candidate -> 2, stable -> 1."""
    import roost

    roost.register_model(None, "churn", str(pkgs["bc"]))
    roost.register_model(None, "churn", str(pkgs["bc2"]))
    roost.set_alias("churn", 1, "prod")
    roost.set_alias("churn", 2, "candidate")
    roost.set_alias("churn", 1, "stable")
    return ws


@contextlib.contextmanager
def grpc_app(app: Any, front: str | None = None) -> Iterator[str]:
    """Serve `app` over gRPC (`front`: asgi or grpcio, default the server's) from an event loop in a thread (what a
    worker does); yields host:port."""
    loop = asyncio.new_event_loop()
    port = free_port()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start_server(app, "127.0.0.1", port, 1 << 20, front=front), loop).result(
        60
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(60)
        asyncio.run_coroutine_threadsafe(app.aclose(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()


def _bc_request(cols: list[str], row: np.ndarray, rid: str = "") -> Any:
    req = pb.ModelInferRequest(model_name="churn", id=rid)
    for c in cols:
        req.inputs.add(name=c, datatype="FP32", shape=[1])
    req.raw_input_contents.extend(np.asarray([v], "<f4").tobytes() for v in row)
    return req


def test_grpc_x_request_id_metadata_is_answered_splits_the_canary_and_is_logged(churn, bc_data, tmp_path):
    """Like HTTP's X-Request-Id header: echoed (response id + trailing metadata), drawn on, logged; body id wins."""
    import pyarrow.dataset as pads

    X, _, cols = bc_data
    logs = tmp_path / "logs"
    app = create_app(["churn/1"], canary=["churn/2=50"], log_requests=1.0, log_dir=str(logs))
    ids = [f"meta-{i}" for i in range(40)]
    with grpc_app(app) as addr, grpc.insecure_channel(addr) as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        for rid in ids:
            resp, call = stub.ModelInfer.with_call(
                _bc_request(cols, X[0]), metadata=(("x-request-id", rid),), timeout=60
            )
            assert resp.id == rid
            assert dict(call.trailing_metadata())["x-request-id"] == rid
            assert resp.model_version == ("2" if share(rid, 0) < 50 else "1")  # the split draws on the sent id
        resp, call = stub.ModelInfer.with_call(
            _bc_request(cols, X[0], rid="body-id"), metadata=(("x-request-id", "meta-x"),), timeout=60
        )
        assert resp.id == "body-id" and dict(call.trailing_metadata())["x-request-id"] == "body-id"
        bad_input = _bc_request(cols, X[0])
        bad_input.inputs[0].datatype = "FP64"
        with pytest.raises(grpc.RpcError) as err:  # an error reply carries the id too, as HTTP's does
            stub.ModelInfer(bad_input, metadata=(("x-request-id", "err-1"),), timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(err.value.trailing_metadata())["x-request-id"] == "err-1"
        with pytest.raises(grpc.RpcError) as err:
            # (no space at the end: a metadata value ending in whitespace is a malformed HTTP/2 field, RFC 9113
            # 8.2.1, which the ASGI front's HTTP/2 layer resets before any gRPC code sees it)
            stub.ModelInfer(_bc_request(cols, X[0]), metadata=(("x-request-id", "bad id " * 30 + "!"),), timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request id" in err.value.details()
    t = pads.dataset(str(logs), format="parquet").to_table().to_pandas()
    assert sorted(t["_request_id"]) == sorted([*ids, "body-id"])
    want = {rid: ("2" if share(rid, 0) < 50 else "1") for rid in ids}
    assert {r: v for r, v in zip(t["_request_id"], t["_version"]) if r in want} == want


def _tf(ip: InProcess, path: str, body: bytes, rid: str = "r") -> tuple[int, Any]:
    status, _, out = ip.request("POST", path, body, {"x-request-id": rid})
    return status, orjson.loads(out)


def test_tfserving_labels_reach_the_aliased_version_and_the_canary(churn, bc_data):
    """/labels/L:predict answers with the loaded version the registry alias L names (primary or canary)."""
    X, _, cols = bc_data
    body = orjson.dumps({"instances": [{c: float(X[0, j]) for j, c in enumerate(cols)}]})
    ip = InProcess(create_app(["churn@prod"], canary=["churn@candidate=50"]))
    try:
        pinned = {}
        for v in ("1", "2"):
            status, out = _tf(ip, f"/v1/models/churn/versions/{v}:predict", body)
            assert status == 200, out
            pinned[v] = out["predictions"]
        assert pinned["1"] != pinned["2"]
        for i in range(30):  # a label is a pinned version: no canary draw, whatever the request id
            assert _tf(ip, "/v1/models/churn/labels/candidate:predict", body, f"c{i}") == (
                200,
                {"predictions": pinned["2"]},
            )
            assert _tf(ip, "/v1/models/churn/labels/prod:predict", body, f"p{i}") == (200, {"predictions": pinned["1"]})
        # another alias of a loaded version reaches it too (TF-Serving: a label names a version)
        assert _tf(ip, "/v1/models/churn/labels/stable:predict", body) == (200, {"predictions": pinned["1"]})
        status, out = _tf(ip, "/v1/models/churn/labels/nope:predict", body)
        assert status == 404 and "no label 'nope'" in out["error"]
    finally:
        ip.close()


def test_tfserving_label_of_a_version_not_loaded_is_404_naming_it(churn, bc_data, pkgs):
    import roost

    X, _, cols = bc_data
    roost.register_model(None, "churn", str(pkgs["bc"]))  # version 3
    roost.set_alias("churn", 3, "next")
    body = orjson.dumps({"instances": [{c: float(X[0, j]) for j, c in enumerate(cols)}]})
    ip = InProcess(create_app(["churn/1"]))  # served by version number: labels still resolve through the registry
    try:
        status, out = _tf(ip, "/v1/models/churn/labels/stable:predict", body)
        assert status == 200 and len(out["predictions"]) == 1
        status, out = _tf(ip, "/v1/models/churn/labels/next:predict", body)
        assert status == 404 and "version 3" in out["error"] and "not loaded" in out["error"]
    finally:
        ip.close()


def test_export_kserve_with_grpc_port_declares_the_h2c_port(ws, cli, pkgs, tmp_path):
    """KServe routes gRPC to a container port named h2c; the container serves gRPC there."""
    import jsonschema
    from test_serve_export import ISVC_SCHEMA_JSON

    out = tmp_path / "g"
    code, _, err = cli("serve", str(pkgs["bc"]), "--grpc-port", "8081", "--export", "kserve", str(out))
    assert code == 0, err
    doc = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    jsonschema.validate(doc, json.loads(ISVC_SCHEMA_JSON))
    (c,) = doc["spec"]["predictor"]["containers"]
    assert c["ports"] == [{"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    assert c["args"][-2:] == ["--grpc-port", "8081"] and c["args"][:7] == [
        "roost",
        "serve",
        "/models/bc",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}  # HTTP stays in the pod
    docker = (out / "Dockerfile").read_text()
    assert json.loads(docker.split("\nCMD ", 1)[1]) == c["args"] and "EXPOSE 8080 8081" in docker
    assert "8081" in (out / "README.md").read_text()
    plain = tmp_path / "p"
    assert cli("serve", str(pkgs["bc"]), "--export", "kserve", str(plain))[0] == 0
    (c,) = yaml.safe_load((plain / "inferenceservice.yaml").read_text())["spec"]["predictor"]["containers"]
    assert [p["name"] for p in c["ports"]] == ["http1"] and "--grpc-port" not in c["args"]
