"""Request ids and what was served: ids echoed on every protocol, the request log's entity ids, fetched feature
values and their online-store event/created times (checked against the source rows written here)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from servekit import Server
from test_serve_features import feature_model

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DEFS = """\
from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("stats_src", path="data/stats.parquet", event_time="event_time", created_time="created_time")
stats = FeatureView("stats", user, src, fields={"f1": "float64", "f2": "float64"}, ttl=timedelta(days=30))
"""
# (user, event hour, created hour, f1, f2): user 1's later event wins; user 2's two rows share the event time and
# the later created time wins; user 3 has f2 missing; user 999 is not in the store at all
ROWS = [
    (1, 1, 2, 0.5, 1.0),
    (2, 2, 3, 1.5, 2.0),
    (2, 2, 9, 1.75, 4.0),
    (3, 3, 4, 2.5, None),
    (1, 5, 6, 0.25, 3.0),
]


def expected_latest() -> dict[int, tuple[datetime, datetime, float, float]]:
    """The latest source row per user by (event time, created time), worked out here by brute force."""
    best: dict[int, tuple] = {}
    for user, eh, ch, f1, f2 in ROWS:
        cand = (T0 + timedelta(hours=eh), T0 + timedelta(hours=ch), f1, np.nan if f2 is None else f2)
        if user not in best or cand[:2] > best[user][:2]:
            best[user] = cand
    return best


@pytest.fixture
def lineage_ws(ws):
    """A workspace whose view `stats` (event + created time) is materialised into the SQLite online store."""
    from roost.features import apply, materialize
    from roost.features.online_stores import reset_online_stores

    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    (ws.root / "features" / "defs.py").write_text(DEFS)
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([r[0] for r in ROWS], pa.int64()),
                "event_time": pa.array([T0 + timedelta(hours=r[1]) for r in ROWS], ts),
                "created_time": pa.array([T0 + timedelta(hours=r[2]) for r in ROWS], ts),
                "f1": pa.array([r[3] for r in ROWS], pa.float64()),
                "f2": pa.array([r[4] for r in ROWS], pa.float64()),
            }
        ),
        ws.root / "data" / "stats.parquet",
    )
    apply()
    materialize(end=T0 + timedelta(days=1))
    yield ws
    reset_online_stores()


def _server(ws, pkg, logs, out):
    """A one-worker server logging every request to `logs`."""
    env = {"ROOST_WORKSPACE": str(ws.root), "ROOST_ONLINE_AS_OF": (T0 + timedelta(days=1)).isoformat()}  # (ttl)
    return Server([str(pkg)], "--log-requests", "1", "--log-dir", str(logs), cwd=ws.root, log=out, env=env)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


@pytest.mark.slow
def test_ids_are_echoed_and_the_log_holds_what_was_served(lineage_ws, tmp_path):
    pkg = feature_model(tmp_path / "fmodel")
    logs = tmp_path / "logs"
    srv = _server(lineage_ws, pkg, logs, tmp_path / "out")
    try:
        srv.wait_ready()
        with srv.client() as c:
            v2 = c.post(
                "/v2/models/fmodel/infer",
                json={
                    "id": "req-v2-1",
                    "inputs": [{"name": "user_id", "datatype": "INT64", "shape": [3], "data": [2, 1, 999]}],
                },
            )
            assert v2.status_code == 200, v2.text
            assert v2.json()["id"] == "req-v2-1" and v2.headers["x-request-id"] == "req-v2-1"
            tf = c.post(
                "/v1/models/fmodel:predict",
                json={"instances": [{"user_id": 3}]},
                headers={"X-Request-Id": "trace:abc/1"},
            )
            assert tf.status_code == 200 and tf.headers["x-request-id"] == "trace:abc/1"
            hdr = c.post(
                "/v2/models/fmodel/infer",
                json={"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [1]}]},
                headers={"X-Request-Id": "from-header"},
            )
            assert hdr.json()["id"] == "from-header" and hdr.headers["x-request-id"] == "from-header"
            generated = []
            for _ in range(10):
                r = c.post("/v1/models/fmodel:predict", json={"instances": [{"user_id": 1}]})
                assert r.status_code == 200
                generated.append(r.headers["x-request-id"])
            assert len(set(generated)) == 10 and all(re.fullmatch(r"[0-9a-f]{32}", g) for g in generated)
            g2 = c.post(
                "/v2/models/fmodel/infer",
                json={"inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [3]}]},
            )
            assert g2.json()["id"] == g2.headers["x-request-id"] and g2.json()["id"] not in generated
            raw = c.post("/v1/models/fmodel:predict", json={"inputs": {"f1": [1.0], "f2": [1.0]}})
            assert raw.status_code == 200 and raw.headers["x-request-id"] not in generated
            # hostile ids: refused, and nothing of them is logged
            long_id = c.post(
                "/v1/models/fmodel:predict", json={"instances": [{"user_id": 1}]}, headers={"X-Request-Id": "x" * 300}
            )
            assert long_id.status_code == 400 and "request id" in long_id.json()["error"]
            assert "x" * 41 not in long_id.text and re.fullmatch(r"[0-9a-f]{32}", long_id.headers["x-request-id"])
            evil = c.post(
                "/v2/models/fmodel/infer",
                json={
                    "id": "a\nb<script>",
                    "inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [1]}],
                },
            )
            assert evil.status_code == 400, evil.text
            not_str = c.post(
                "/v2/models/fmodel/infer",
                json={"id": 7, "inputs": [{"name": "user_id", "datatype": "INT64", "shape": [1], "data": [1]}]},
            )
            assert not_str.status_code == 400
            assert c.get("/v2/health/ready").headers["x-request-id"]  # every reply carries an id
    finally:
        assert srv.stop() == 0  # SIGTERM flushes the request log
    files = sorted(logs.rglob("*.parquet"))
    assert files
    for f in files:  # <log dir>/<model>/<YYYY-MM-DD of the rows' time>/
        day = {ts.astimezone(UTC).strftime("%Y-%m-%d") for ts in pq.read_table(f)["_ts"].to_pylist()}
        assert f.relative_to(logs).parts[:2] == ("fmodel", *day)
    meta = pq.read_schema(files[0]).metadata
    assert json.loads(meta[b"roost.feature_refs"]) == {"f1": "stats:f1", "f2": "stats:f2"}
    assert json.loads(meta[b"roost.entities"]) == ["user_id"]
    rows = pads.dataset([str(f) for f in files]).to_table().to_pylist()
    by_id: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["_row"]):
        by_id.setdefault(row["_request_id"], []).append(row)
    assert set(by_id) == {
        "req-v2-1",
        "trace:abc/1",
        "from-header",
        *generated,
        g2.json()["id"],
        raw.headers["x-request-id"],
    }
    assert all(not k.startswith(("x" * 41, "a\n")) for k in by_id)
    latest = expected_latest()
    for rid, users in [("req-v2-1", [2, 1, 999]), ("trace:abc/1", [3]), ("from-header", [1]), (generated[0], [1])]:
        got = by_id[rid]
        assert [r["user_id"] for r in got] == users
        for r, u in zip(got, users):
            if u not in latest:  # missing online: null times, NaN features (the training convention)
                assert r["_fs_event_time.stats"] is None and r["_fs_created_time.stats"] is None
                assert np.isnan(r["f1"]) and np.isnan(r["f2"])
                continue
            et, ct, f1, f2 = latest[u]
            assert _utc(r["_fs_event_time.stats"]) == et and _utc(r["_fs_created_time.stats"]) == ct
            assert r["f1"] == np.float32(f1)
            assert (np.isnan(r["f2"]) and np.isnan(f2)) or r["f2"] == np.float32(f2)
            assert r["pred_prediction"] == pytest.approx(float(np.float32(f1) + 10 * np.float32(f2)), nan_ok=True)
    [sent] = by_id[raw.headers["x-request-id"]]  # feature values sent: no entity, no store times
    assert sent["user_id"] is None and sent["_fs_event_time.stats"] is None and sent["_fs_created_time.stats"] is None
    assert sent["f1"] == 1.0 and sent["_protocol"] == "tfserving"


@pytest.mark.slow
def test_a_failing_request_log_never_fails_a_request(lineage_ws, tmp_path):
    pkg = feature_model(tmp_path / "fmodel")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "fmodel").write_text("a file where the model's log folder should be")  # every write fails (even as root)
    srv = _server(lineage_ws, pkg, logs, tmp_path / "out")
    try:
        srv.wait_ready()
        with srv.client() as c:
            for _ in range(5):
                r = c.post("/v1/models/fmodel:predict", json={"instances": [{"user_id": 1}, {"user_id": 2}]})
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == pytest.approx([30.25, 41.75])
            deadline = time.monotonic() + 60  # hang guard: the drops are counted by the next flush (1 s)
            dropped = 0.0
            while time.monotonic() < deadline and dropped < 10:
                m = re.search(
                    r'roost_request_log_dropped_rows_total\{model="fmodel"\} ([0-9.e+]+)', c.get("/metrics").text
                )
                dropped = float(m.group(1)) if m else 0.0
                time.sleep(0.2)
            assert dropped == 10
            assert c.post("/v1/models/fmodel:predict", json={"instances": [{"user_id": 3}]}).status_code == 200
    finally:
        srv.stop()
    assert "request log for fmodel dropped" in srv.output()
    assert not list(logs.rglob("*.parquet"))


def test_a_full_queue_drops_and_counts_instead_of_growing(tmp_path):
    """Past max_buffer_rows waiting rows, samples are dropped (counted), never queued without bound."""
    from roost.serve.reqlog import RequestLogger

    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="y")])
    model = SimpleNamespace(name="m", version="1", package=pkg)
    rl = RequestLogger(tmp_path, rate=1.0, flush_s=3600, max_buffer_rows=6)
    try:
        for i in range(5):  # 2 rows each: the first three fit (6 rows), the last two are dropped
            rl.maybe_log(model, "v2", {"x": np.array([i, i], np.float32)}, {"y": np.array([i, i], np.float32)}, 0.0)
        assert rl.dropped == 4
    finally:
        rl.close()
    t = pads.dataset(str(tmp_path), format="parquet").to_table()
    assert sorted(t["x"].to_pylist()) == [0, 0, 1, 1, 2, 2]
    assert t.schema.metadata is None or b"roost.entities" not in t.schema.metadata


def _start_redis(tmp_path):
    """A real redis-server on a free loopback port (skips when it is not installed); returns (process, URL)."""
    import shutil
    import subprocess

    from servekit import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    redis = pytest.importorskip("redis")
    port = free_port()
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    r = redis.Redis(port=port)
    deadline = time.monotonic() + 60  # hang guard only
    while True:
        try:
            if r.ping():
                break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not answer PING")
            time.sleep(0.05)
    r.close()
    return proc, f"redis://127.0.0.1:{port}/0"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_online_readers_return_event_and_created_times(backend, tmp_path):
    """Both online stores read a row's event and created time back as written; None where absent."""
    from roost.features.online_stores.base import ViewData
    from roost.features.online_stores.redis import RedisOnlineStore
    from roost.features.online_stores.sqlite import SQLiteOnlineStore

    proc = None
    if backend == "redis":
        proc, url = _start_redis(tmp_path)
        store = RedisOnlineStore.from_url(url, "p")
    else:
        store = SQLiteOnlineStore(f"sqlite:///{tmp_path / 'online.db'}")
    try:
        et = [T0 + timedelta(hours=1), T0 + timedelta(hours=2, microseconds=7)]
        ct = [T0 + timedelta(hours=3), None]  # user 2's source had no created time
        ts = pa.timestamp("us", tz="UTC")
        tbl = pa.table(
            {
                "user_id": pa.array([1, 2], pa.int64()),
                "f1": pa.array([0.5, None], pa.float64()),
                "__et": pa.array(et, ts),
                "__ct": pa.array(ct, ts),
            }
        )
        store.write([ViewData("v", {"user_id": "int64"}, {"f1": "float64"}, tbl)])
        us = [
            None if t is None else int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
            for t in et + ct
        ]
        reader = store.reader("v", {"user_id": "int64"}, {"f1": "float64"}, with_time=True, with_created=True)
        assert reader.read([[1, 2, 3]]) == [[0.5, None, None], [us[0], us[1], None], [us[2], None, None]]
        assert reader.read([[2]]) == [[None], [us[1]], [None]]
        plain = store.reader("v", {"user_id": "int64"}, {"f1": "float64"})
        assert plain.read([[1, 3]]) == [[0.5, None]]
    finally:
        store.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.slow
def test_grpc_ids_are_answered_and_logged(pkgs, tmp_path):
    """gRPC ModelInfer: the request's id is answered and logged; without one an id is generated; a bad one refused."""
    tg = pytest.importorskip("tritonclient.grpc")
    from servekit import free_port
    from tritonclient.utils import InferenceServerException

    port, logs = free_port(), tmp_path / "logs"
    srv = Server(
        [f"strings={pkgs['strings']}"],
        *("--grpc-port", str(port), "--log-requests", "1", "--log-dir", str(logs)),
        log=tmp_path / "out",
    )
    try:
        srv.wait_ready()
        g = tg.InferenceServerClient(f"127.0.0.1:{port}")
        x, country = tg.InferInput("x", [1], "FP32"), tg.InferInput("country", [1], "BYTES")
        x.set_data_from_numpy(np.array([1.0], np.float32))
        country.set_data_from_numpy(np.array([b"b"], dtype=object))
        assert g.infer("strings", [x, country], request_id="grpc-1").get_response().id == "grpc-1"
        gen = {g.infer("strings", [x, country]).get_response().id for _ in range(3)}
        assert len(gen) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in gen)
        with pytest.raises(InferenceServerException, match="request id"):
            g.infer("strings", [x, country], request_id="bad id\n" * 30)
        g.close()
    finally:
        assert srv.stop() == 0
    t = pads.dataset(str(logs), format="parquet").to_table()
    assert sorted(t["_request_id"].to_pylist()) == sorted(["grpc-1", *gen])
    assert set(t["_protocol"].to_pylist()) == {"grpc"} and t["pred_prediction"].to_pylist() == [3.0] * 4


def test_rows_land_in_the_folder_of_their_utc_day(tmp_path, monkeypatch):
    """Requests on both sides of midnight, written in one flush, go to two day folders."""
    from roost.serve import reqlog

    clock = iter([datetime(2026, 12, 31, 23, 59, 59, 500000, UTC), datetime(2027, 1, 1, 0, 0, 0, 500000, UTC)])

    class FakeTime:  # the real time module, except time.time() walks over midnight
        def __getattr__(self, name):
            return getattr(time, name)

        def time(self):
            return next(clock).timestamp()

    pkg = SimpleNamespace(inputs=[SimpleNamespace(name="x")], outputs=[SimpleNamespace(name="y")])
    model = SimpleNamespace(name="m", version="1", package=pkg)
    monkeypatch.setattr(reqlog, "time", FakeTime())
    rl = reqlog.RequestLogger(tmp_path, rate=1.0, flush_s=3600)
    try:
        for i in range(2):
            rl.maybe_log(model, "v2", {"x": np.array([i], np.float32)}, {"y": np.array([i], np.float32)}, 0.0)
    finally:
        rl.close()
    files = sorted(tmp_path.rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["2026-12-31", "2027-01-01"]
    assert [pq.read_table(f)["x"].to_pylist() for f in files] == [[0.0], [1.0]]
