"""Requests with entity ids: the server reads the model's features from the workspace's online store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper
from servekit import Server, write_package

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = {"ROOST_ONLINE_AS_OF": (T0 + timedelta(days=1)).isoformat()}  # the view's 30-day ttl is read as of then
DEFS = """\
from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("stats_src", path="data/stats.parquet", event_time="event_time")
stats = FeatureView("stats", user, src, fields={"f1": "float64", "f2": "float64"}, ttl=timedelta(days=30))
"""


def feature_model(dest):
    """prediction = f1 + 10 * f2, trained 'from the feature store' (feature_refs + entities in the metadata)."""
    g = helper.make_graph(
        [helper.make_node("Mul", ["f2", "ten"], ["f2x"]), helper.make_node("Add", ["f1", "f2x"], ["prediction"])],
        "feat",
        [
            helper.make_tensor_value_info("f1", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("f2", TensorProto.FLOAT, ["N"]),
        ],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N"])],
        initializer=[helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    io = [{"name": n, "dtype": "float32", "shape": [-1]} for n in ("f1", "f2")]
    return write_package(
        dest,
        m,
        io,
        [{"name": "prediction", "dtype": "float32", "shape": [-1]}],
        "regression",
        None,
        {"feature_refs": ["stats:f1", "stats:f2"], "entities": ["user_id"]},
    )


@pytest.fixture
def feature_ws(ws):
    from roost.features import apply, materialize
    from roost.features.online_stores import reset_online_stores

    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    (ws.root / "features" / "defs.py").write_text(DEFS)
    users = [1, 2, 3, 1]
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(users, pa.int64()),
                "event_time": pa.array([T0 + timedelta(hours=h) for h in (1, 2, 3, 5)], pa.timestamp("us", tz="UTC")),
                "f1": pa.array([0.5, 1.5, 2.5, 0.25], pa.float64()),
                "f2": pa.array([1.0, 2.0, None, 3.0], pa.float64()),
            }
        ),
        ws.root / "data" / "stats.parquet",
    )
    apply()
    materialize(end=T0 + timedelta(days=1))
    yield ws
    reset_online_stores()


def test_entity_ids_read_the_online_store(feature_ws, tmp_path):
    pkg = feature_model(tmp_path / "fmodel")
    srv = Server(
        [str(pkg)], cwd=feature_ws.root, log=tmp_path / "log", env={"ROOST_WORKSPACE": str(feature_ws.root), **AS_OF}
    )
    try:
        srv.wait_ready()
        with srv.client() as c:
            r = c.post(
                "/v1/models/fmodel:predict",
                json={"instances": [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}, {"user_id": 999}]},
            )
            assert r.status_code == 200, r.text
            # user 1: latest row (f1=0.25, f2=3); user 3: f2 missing -> NaN; 999: unknown -> NaN
            assert r.json()["predictions"][:2] == [30.25, 21.5]
            assert r.json()["predictions"][2:] == [None, None]
            v2 = c.post(
                "/v2/models/fmodel/infer",
                json={"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [2], "data": [2, 1]}]},
            )
            assert v2.status_code == 200, v2.text
            assert v2.json()["outputs"][0]["data"] == [21.5, 30.25]
            direct = c.post("/v1/models/fmodel:predict", json={"inputs": {"f1": [1.0], "f2": [1.0]}})
            assert direct.json()["outputs"] == [11.0]
            bad = c.post("/v1/models/fmodel:predict", json={"instances": [{"user_id": "abc"}]})
            assert bad.status_code == 400 and "user_id" in bad.json()["error"]
            bad = c.post(
                "/v2/models/fmodel/infer",
                json={"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1, 1], "data": [1]}]},
            )
            assert bad.status_code == 400 and "1-D" in bad.json()["error"]
    finally:
        srv.stop()


def test_entity_ids_without_a_store_are_a_clear_400(tmp_path):
    """A model with feature_refs served outside any workspace: ids are refused, features still work."""
    import asyncio

    from roost.serve.codec import HTTPError
    from roost.serve.features import fill, needs_features
    from roost.serve.signature import read_package

    pkg = read_package(feature_model(tmp_path / "m"))
    arrays = {"user_id": np.array([1, 2])}
    assert needs_features(pkg, arrays)
    assert not needs_features(pkg, {"f1": np.ones(1), "f2": np.ones(1)})
    with pytest.raises(HTTPError, match="no online feature store"):
        asyncio.run(fill(pkg, arrays, None))


def test_printed_example_curl_sends_entity_ids_for_a_feature_store_model(feature_ws, tmp_path):
    """`roost serve` prints an example request per model: for a model whose features come from the online store,
    that request must carry the entity ids the model accepts (typed as the applied entity's join key), not the
    raw feature columns, and the running server answers it from the store."""
    import json
    import shlex

    from roost.serve.command import example_requests

    pkg = feature_model(tmp_path / "fmodel")
    srv = Server(
        [str(pkg)], cwd=feature_ws.root, log=tmp_path / "log", env={"ROOST_WORKSPACE": str(feature_ws.root), **AS_OF}
    )
    try:
        srv.wait_ready()
        lines = example_requests([str(pkg)], "127.0.0.1", srv.port)
        curls = [shlex.split(x.strip()) for x in lines if x.strip().startswith("curl")]
        v2 = json.loads(next(c for c in curls if c[-1].endswith("/v2/models/fmodel/infer"))[-2])
        tf = json.loads(next(c for c in curls if c[-1].endswith("/v1/models/fmodel:predict"))[-2])
        assert [i["name"] for i in v2["inputs"]] == ["user_id"]  # not f1/f2: those come from the store
        assert v2["inputs"][0]["datatype"] == "INT64" and v2["inputs"][0]["shape"] == [1]
        assert list(tf["instances"][0]) == ["user_id"]
        with srv.client() as c:
            r = c.post("/v2/models/fmodel/infer", json=v2)
            assert r.status_code == 200, r.text
            assert r.json()["model_name"] == "fmodel" and len(r.json()["outputs"][0]["data"]) == 1
            r = c.post("/v1/models/fmodel:predict", json=tf)
            assert r.status_code == 200, r.text
            assert len(r.json()["predictions"]) == 1
    finally:
        srv.stop()


def test_example_request_types_entity_ids_as_the_applied_join_key(ws, tmp_path):
    """A string join key makes the example send a BYTES id; outside a workspace it falls back to INT64."""
    from roost.features import apply
    from roost.serve.command import entity_request
    from roost.serve.signature import read_package

    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    (ws.root / "features" / "defs.py").write_text(DEFS.replace('{"user_id": "int64"}', '{"user_id": "string"}'))
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array(["u1"], pa.string()),
                "event_time": pa.array([T0], pa.timestamp("us", tz="UTC")),
                "f1": pa.array([0.5], pa.float64()),
                "f2": pa.array([1.0], pa.float64()),
            }
        ),
        ws.root / "data" / "stats.parquet",
    )
    apply()
    req = entity_request(read_package(feature_model(tmp_path / "m")))
    assert req is not None and [(i["name"], i["datatype"]) for i in req["inputs"]] == [("user_id", "BYTES")]
    assert isinstance(req["inputs"][0]["data"][0], str)
