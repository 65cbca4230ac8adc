"""`roost serve` with request-time features (computed from the request's inputs) and pushed features (rows written
to the online store while the server runs): predictions equal the offline-built rows run through the package, and
`roost monitor skew` over the server's request log finds no skew, then finds a planted one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper
from servekit import Server, write_package

TS = pa.timestamp("us", tz="UTC")
NOW = datetime.now(UTC).replace(microsecond=0)
DEFS = """\
import pandas as pd
from roost.features import Entity, FeatureView, RequestView, Source

user = Entity("user", {"user_id": "int64"})
src = Source("stats_src", path="data/stats.parquet", event_time="event_time")
stats = FeatureView("stats", user, src, fields={"f1": "float64"})


def txn_feats(df):
    return pd.DataFrame({
        "ratio": df["amount"] / df["f1"],
        "is_web": (df["channel"] == "web").astype("float64"),
        "hour": df["req_time"].dt.hour.astype("float64"),
    })


txn = RequestView(
    "txn",
    request={"amount": "float64", "channel": "string", "req_time": "timestamp"},
    sources=["stats:f1"],
    fields={"ratio": "float64", "is_web": "float64", "hour": "float64"},
    transform=txn_feats,
)
"""
INPUTS = ["f1", "ratio", "is_web", "hour"]
REFS = ["stats:f1", "txn:ratio", "txn:is_web", "txn:hour"]
REQUEST_FIELDS = {"amount": "float64", "channel": "string", "req_time": "timestamp"}


def request_model(dest):
    """prediction = f1 + 10 * ratio + 100 * is_web + hour (one stored and three request-time features)."""
    consts = {"c10": 10.0, "c100": 100.0}
    nodes = [
        helper.make_node("Mul", ["ratio", "c10"], ["a"]),
        helper.make_node("Mul", ["is_web", "c100"], ["b"]),
        helper.make_node("Add", ["f1", "a"], ["s1"]),
        helper.make_node("Add", ["s1", "b"], ["s2"]),
        helper.make_node("Add", ["s2", "hour"], ["prediction"]),
    ]
    g = helper.make_graph(
        nodes,
        "rq",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N"]) for n in INPUTS],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N"])],
        initializer=[helper.make_tensor(k, TensorProto.FLOAT, [], [v]) for k, v in consts.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return write_package(
        dest,
        m,
        [{"name": n, "dtype": "float32", "shape": [-1]} for n in INPUTS],
        [{"name": "prediction", "dtype": "float32", "shape": [-1]}],
        "regression",
        None,
        {"feature_refs": REFS, "entities": ["user_id"], "request_fields": REQUEST_FIELDS},
    )


def write_stats(root, name, users, f1, et):
    pq.write_table(
        pa.table({"user_id": pa.array(users, pa.int64()), "event_time": pa.array(et, TS), "f1": pa.array(f1)}),
        root / "data" / name,
    )


@pytest.fixture
def rq_ws(ws):
    from roost.features import apply, materialize
    from roost.features.online_stores import reset_online_stores

    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    (ws.root / "features" / "defs.py").write_text(DEFS)
    write_stats(
        ws.root, "stats.parquet", [1, 2, 3, 1], [0.5, 2.0, None, 4.0], [NOW - timedelta(hours=h) for h in (3, 2, 2, 1)]
    )
    apply()
    materialize(end=NOW)
    yield ws
    reset_online_stores()


def push(user, f1, et):
    """roost.features.push: the row into the online store and the view's offline log."""
    from roost.features import push as push_rows

    assert push_rows("stats", {"user_id": [user], "event_time": [et], "f1": [f1]}) == 1


def offline_predictions(pkg, rows):
    """The package's model on rows built offline by training_set (request fields as entity-frame columns)."""
    import onnxruntime as ort
    import pandas as pd

    from roost.features import training_set

    ent = pd.DataFrame(rows)
    ent["event_time"] = pd.Timestamp.now(tz="UTC")
    ent["req_time"] = pd.to_datetime(ent["req_time"], utc=True, format="ISO8601")
    off = training_set(ent, REFS)
    sess = ort.InferenceSession(str(pkg / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {n: off[n].to_numpy(dtype=np.float32, na_value=np.nan) for n in INPUTS}
    return sess.run(None, feeds)[0]


ROWS = [
    {"user_id": 1, "amount": 10.0, "channel": "web", "req_time": "2026-03-01T08:30:00Z"},
    {"user_id": 2, "amount": 3.0, "channel": "app", "req_time": "2026-03-01T23:59:59+02:00"},
    {"user_id": 3, "amount": 1.5, "channel": "web", "req_time": "2026-03-01T10:00:00-05:00"},  # f1 null
    {"user_id": 999, "amount": 2.0, "channel": "app", "req_time": "2026-03-01T00:00:00Z"},  # unknown user
    {"user_id": 7, "amount": 8.0, "channel": "web", "req_time": "2026-03-02T17:00:00Z"},  # pushed below
]


def v2_body(rows):
    return {
        "inputs": [
            {"name": "user_id", "datatype": "INT64", "shape": [len(rows)], "data": [r["user_id"] for r in rows]},
            {"name": "amount", "datatype": "FP64", "shape": [len(rows)], "data": [r["amount"] for r in rows]},
            {"name": "channel", "datatype": "BYTES", "shape": [len(rows)], "data": [r["channel"] for r in rows]},
            {"name": "req_time", "datatype": "BYTES", "shape": [len(rows)], "data": [r["req_time"] for r in rows]},
        ]
    }


def _f32(values):
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def test_serve_computes_request_features_and_reads_pushed_ones(rq_ws, tmp_path):
    import json
    import shlex

    from roost.monitor.skew import skew
    from roost.serve.command import example_requests

    pkg = request_model(tmp_path / "rqmodel")
    logs = tmp_path / "logs"
    env = {"ROOST_WORKSPACE": str(rq_ws.root)}
    srv = Server([str(pkg)], "--log-requests", "1", "--log-dir", str(logs), cwd=rq_ws.root, log=tmp_path / "o", env=env)
    try:
        srv.wait_ready()
        with srv.client() as c:
            before = c.post("/v2/models/rqmodel/infer", json=v2_body(ROWS))
            assert before.status_code == 200, before.text
            assert before.json()["outputs"][0]["data"][4] is None  # user 7: nothing stored yet
            push(7, 2.5, datetime.now(UTC))  # after the first request: it saw no row, rightly
            v2 = c.post("/v2/models/rqmodel/infer", json=v2_body(ROWS))
            assert v2.status_code == 200, v2.text
            tf = c.post("/v1/models/rqmodel:predict", json={"instances": ROWS})
            assert tf.status_code == 200, tf.text
            want = offline_predictions(pkg, ROWS)
            assert np.isnan(want[2]) and np.isnan(want[3]) and not np.isnan(want[4])
            # brute force of row 0: f1 = 4.0 (latest), ratio 2.5, web, 08h -> 4 + 25 + 100 + 8
            assert want[0] == np.float32(137.0) and want[4] == np.float32(2.5 + 32 + 100 + 17)
            np.testing.assert_array_equal(_f32(v2.json()["outputs"][0]["data"]), want)
            np.testing.assert_array_equal(_f32(tf.json()["predictions"]), want)
            # missing and malformed request fields: 400s naming the field
            body = v2_body(ROWS[:1])
            body["inputs"] = [i for i in body["inputs"] if i["name"] != "channel"]
            r = c.post("/v2/models/rqmodel/infer", json=body)
            assert r.status_code == 400 and "'channel'" in r.json()["error"], r.text
            r = c.post("/v1/models/rqmodel:predict", json={"instances": [{**ROWS[0], "req_time": "2026-03-01T08:30"}]})
            assert r.status_code == 400 and "'req_time'" in r.json()["error"] and "offset" in r.json()["error"], r.text
            # the example requests `roost serve` prints send the entity id and the request fields, and are answered
            curls = [shlex.split(x.strip()) for x in example_requests([str(pkg)], "127.0.0.1", srv.port)]
            ex_v2 = json.loads(next(x for x in curls if x and x[-1].endswith("/infer"))[-2])
            assert [i["name"] for i in ex_v2["inputs"]] == ["user_id", "amount", "channel", "req_time"]
            ex_tf = json.loads(next(x for x in curls if x and x[-1].endswith(":predict"))[-2])
            for path, body in (("/v2/models/rqmodel/infer", ex_v2), ("/v1/models/rqmodel:predict", ex_tf)):
                r = c.post(path, json=body)
                assert r.status_code == 200, r.text
    finally:
        srv.stop()
    rep = skew(logs)
    assert {f.feature for f in rep.features} == set(INPUTS)
    assert rep.rows_compared == 3 * len(ROWS) + 2
    # the first request ran before the push: user 7's f1 and ratio were null online, the PIT recomputation agrees
    assert not rep.failed and all(f.mismatches == 0 for f in rep.features), rep.to_dict()
    # a planted skew in a request-time feature: one logged served ratio changed
    files = sorted(logs.rglob("*.parquet"))
    tbl = pq.read_table(files[0])
    ratio = tbl.column("ratio").to_pylist()
    ratio[0] = ratio[0] + 1.0
    tbl = tbl.set_column(tbl.column_names.index("ratio"), "ratio", pa.array(ratio, tbl.schema.field("ratio").type))
    pq.write_table(tbl, files[0])
    rep = skew(logs, max_mismatch=0.0)
    assert rep.failed and rep.feature("ratio").count("value_mismatch") == 1
    assert [f.feature for f in rep.failing] == ["ratio"]
    ex = rep.feature("ratio").examples["value_mismatch"][0]
    assert ex["served"] == pytest.approx(ex["recomputed"] + 1.0, rel=1e-6)
