"""Many models per fleet (#35 item 3): `roost serve --all` loads registry models on their first request, evicts
the least recently used under --max-memory, never fails a request for it, loads a model once however many first
requests arrive together, and follows the registry (new aliases, moved aliases) without a restart."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from manykit import ort_probability, register_many, variant
from prometheus_client.parser import text_string_to_metric_families
from servekit import Server, v2_body

from roost.errors import RoostError
from roost.serve.catalog import Selection, Snapshot, parse_size
from roost.serve.config import ServeConfig


def _metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (all workers)."""
    text = client.get("/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _infer(client: httpx.Client, name: str, body: dict) -> httpx.Response:
    return client.post(f"/v2/models/{name}/infer", json=body)


def _prob(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["outputs"][0]["data"], dtype=np.float32)


@pytest.fixture
def many(ws, pkgs, tmp_path) -> dict[str, Path]:
    """30 registered models m00..m29 (shifted copies of the bc logreg), each with alias prod on version 1."""
    return register_many(pkgs["bc"], tmp_path / "many", [f"m{i:02d}" for i in range(30)])


def test_loads_on_first_request_evicts_lru_under_budget_and_reloads_without_a_failed_request(many, bc_data, tmp_path):
    X, _, cols = bc_data
    body = v2_body(cols, X[:3])
    want = {name: ort_probability(pkg, cols, X[:3]) for name, pkg in many.items()}
    assert len({w.tobytes() for w in want.values()}) == 30  # every model answers differently
    # the fleet's: 2.5 MiB per worker, room for ~9 of these in each (each counts at least its 0.26 MB estimate; a load
    # grows RSS by ~0.15 MB with the matrix serving graph, ~0.33 MB with the package's 30-input graph). A worker's
    # first load also counts ONNX Runtime's one-time growth (2,064-2,072 kB measured): with 2 MiB per worker it was
    # evicted at once, and the worker that served only that request then listed every model UNAVAILABLE.
    budget = 5 << 20
    srv = Server([], "--all", "--max-memory", str(budget), "--replicas", "2", log=tmp_path / "srv.log")
    try:
        srv.wait_ready()
        with srv.client() as c:
            assert _metric(c, "roost_model_loads_total") == 0  # nothing loaded before a request
            index = c.post("/v2/repository/index").json()
            assert sorted(r["name"] for r in index) == [f"{n}@prod" for n in sorted(many)]
            assert {r["state"] for r in index} == {"UNAVAILABLE"}
            np.testing.assert_allclose(_prob(_infer(c, "m00", body)), want["m00"], rtol=1e-6)
            assert _metric(c, "roost_model_loads_total", model="m00", outcome="ok") == 1
            statuses: list[int] = []

            def loop(offset: int) -> None:
                with srv.client() as cc:
                    for rnd in range(3):
                        for i in range(30):
                            name = f"m{(i + offset) % 30:02d}"
                            r = _infer(cc, name if rnd % 2 else f"{name}@prod", body)
                            statuses.append(r.status_code)
                            if r.status_code == 200:
                                np.testing.assert_allclose(_prob(r), want[name], rtol=1e-6)
                                assert r.json()["model_name"] == name and r.json()["model_version"] == "1"

            with ThreadPoolExecutor(2) as pool:  # two clients, each over 30 models: more than fit
                list(pool.map(loop, [0, 15]))
            assert len(statuses) == 180 and set(statuses) == {200}, sorted(set(statuses))
            evictions = _metric(c, "roost_model_evictions_total")
            loads = _metric(c, "roost_model_loads_total", outcome="ok")
            assert evictions > 0 and loads > 30  # some models were evicted and loaded again
            resident = _metric(c, "roost_models_resident")
            assert 0 < resident < 30
            assert _metric(c, "roost_models_resident_bytes") <= budget
            assert _metric(c, "roost_model_load_latency_seconds_count") == loads
            assert _metric(c, "roost_requests_total", model="m07", code="200") == 6
            # an evicted model answers again (loaded anew), equal to ONNX Runtime
            states = {r["name"]: r["state"] for r in c.post("/v2/repository/index").json()}
            assert "READY" in states.values() and "UNAVAILABLE" in states.values()
            for name in sorted(many)[:5]:
                np.testing.assert_allclose(_prob(_infer(c, name, body)), want[name], rtol=1e-6)
    finally:
        srv.stop()


def test_concurrent_first_requests_load_once_and_the_registry_is_followed(many, pkgs, bc_data, tmp_path):
    import roost

    X, _, cols = bc_data
    body = v2_body(cols, X[:2])
    roost.register_model(None, "m00", str(variant(pkgs["bc"], tmp_path / "m00v2", shift=-3.0)))  # m00/2, no alias
    broken = variant(pkgs["bc"], tmp_path / "broken", shift=0.0, broken=True)
    roost.register_model(None, "broken", str(broken))
    roost.set_alias("broken", 1, "prod")
    srv = Server([], "--all", "--replicas", "1", "--poll", "0.3", log=tmp_path / "srv.log")
    try:
        srv.wait_ready()
        with srv.client() as c:
            with ThreadPoolExecutor(16) as pool:  # 16 first requests for one model at the same time
                rs = list(
                    pool.map(lambda _: _infer(httpx.Client(base_url=srv.url, timeout=30), "m03", body), range(16))
                )
            assert [r.status_code for r in rs] == [200] * 16
            assert _metric(c, "roost_model_loads_total", model="m03") == 1
            # errors: an unknown model is a 404 that says what is served; a broken one a 503 with the reason, and
            # the others still answer
            r = _infer(c, "nosuch", body)
            assert r.status_code == 404 and "not served here" in r.json()["error"]
            r = _infer(c, "m03@staging", body)
            assert r.status_code == 404 and "no served alias 'staging'" in r.json()["error"]
            r = _infer(c, "broken", body)
            assert r.status_code == 503 and "failed to load" in r.json()["error"], r.text
            assert _metric(c, "roost_model_loads_total", model="broken", outcome="failed") == 1
            assert c.get("/v2/models/broken/ready").status_code == 503
            assert _prob(_infer(c, "m04", body)).shape == (2,)
            # an explicit version of a served model loads beside its alias's
            v2_want = ort_probability(tmp_path / "m00v2", cols, X[:2])
            r = c.post("/v2/models/m00/versions/2/infer", json=body)
            np.testing.assert_allclose(_prob(r), v2_want, rtol=1e-6)
            # a model registered while serving is served without a restart
            late = variant(pkgs["bc"], tmp_path / "late", shift=1.5)
            roost.register_model(None, "late", str(late))
            assert _infer(c, "late", body).status_code == 404  # no alias yet: not served
            roost.set_alias("late", 1, "prod")
            r = _wait_for(lambda: _infer(c, "late", body), 200)
            np.testing.assert_allclose(_prob(r), ort_probability(late, cols, X[:2]), rtol=1e-6)
            # a moved alias serves the new version (warmed before the switch)
            old = _prob(_infer(c, "m00", body))
            roost.set_alias("m00", 2, "prod")
            r = _wait_for(lambda: _infer(c, "m00", body), 200, lambda r: r.json()["model_version"] == "2")
            np.testing.assert_allclose(_prob(r), v2_want, rtol=1e-6)
            assert not np.allclose(old, v2_want)
            assert _metric(c, "roost_model_swaps_total", model="m00") == 1
            ready = c.get("/v2/models/m00/ready").json()
            assert ready["ready"] and ready["state"] == "READY" and ready["version"] == "2"
            meta = c.get("/v2/models/m05@prod").json()  # metadata loads the model
            assert meta["name"] == "m05" and meta["state"] == "READY" and len(meta["inputs"]) == 30
            tf = c.post("/v1/models/m06/labels/prod:predict", json={"instances": [dict(zip(cols, X[0].tolist()))]})
            assert tf.status_code == 200, tf.text
    finally:
        srv.stop()


def _wait_for(call, status: int, cond=lambda r: True, timeout: float = 20.0) -> httpx.Response:
    """Repeat `call` until it answers `status` and `cond` holds (the watcher polls every 0.3 s)."""
    deadline = time.monotonic() + timeout
    while True:
        r = call()
        if r.status_code == status and cond(r):
            return r
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


def test_selection_filters_and_sizes(many, pkgs, tmp_path):
    import roost

    roost.set_alias("m01", 1, "staging")
    assert sorted(Snapshot.read(Selection(("m0*",), ())).aliases) == [f"m0{i}" for i in range(10)]
    snap = Snapshot.read(Selection((), ("staging",)))
    assert snap.aliases == {"m01": {"staging": 1}}
    both = Snapshot.read(Selection())
    assert both.default_alias("m01", ()) == "prod" and both.default_alias("m01", ("staging",)) == "staging"
    assert parse_size("512MB") == 512_000_000 and parse_size("512MiB") == parse_size("512M") == 512 << 20
    assert parse_size("1.5GiB") == 3 << 29 and parse_size("1000") == 1000
    for bad in ("lots", "-1MB", "0"):
        with pytest.raises(RoostError):
            parse_size(bad)
    with pytest.raises(RoostError, match="do not mix"):
        ServeConfig(models=["m01@prod"], serve_all=True).check()
    with pytest.raises(RoostError, match="registry selections"):
        ServeConfig(models=["m01@prod"], max_memory="1GB").check()
    assert ServeConfig(serve_all=True, max_memory="1GB", replicas=2).worker_budget() == 500_000_000


def test_in_process_app_with_room_for_no_model_loads_per_request_and_evicts_after_it(many, bc_data):
    import orjson
    from servekit import InProcess

    from roost.serve.worker import create_app

    X, _, cols = bc_data
    body = orjson.dumps(v2_body(cols, X[:2]))
    ip = InProcess(create_app([], select=["m1*"], max_memory="1"))  # 1 byte: room for none
    try:
        for name in ("m10", "m11", "m10"):
            status, _, out = ip.request("POST", f"/v2/models/{name}/infer", body, {"content-type": "application/json"})
            assert status == 200, out
            np.testing.assert_allclose(
                orjson.loads(out)["outputs"][0]["data"], ort_probability(many[name], cols, X[:2]), rtol=1e-6
            )
        status, _, out = ip.request("POST", "/v2/models/m20/infer", body, {"content-type": "application/json"})
        assert status == 404 and b"'m1*'" in out  # outside the --models glob
        status, _, out = ip.request("GET", "/admin/status")
        assert status == 200 and orjson.loads(out)["models"] == []  # each was evicted once answered
        status, _, out = ip.request("POST", "/v2/repository/index", b'{"ready": true}')
        assert status == 200 and orjson.loads(out) == []
        rows = {r["name"]: r for r in orjson.loads(ip.request("POST", "/v2/repository/index")[2])}
        assert sorted(rows) == [f"m1{i}@prod" for i in range(10)]
        assert rows["m10@prod"]["state"] == "UNAVAILABLE" and "evicted" in rows["m10@prod"]["reason"]
        assert "first request" in rows["m12@prod"]["reason"]
        status, _, out = ip.request("GET", "/metrics")
        text = out.decode()
        assert 'roost_model_loads_total{model="m10",outcome="ok"} 2.0' in text
        assert 'roost_model_evictions_total{model="m10"} 2.0' in text
        assert ip.request("GET", "/openapi.json")[0] == 200
        assert ip.request("POST", "/v2/repository/index", b'{"ready": 1}')[0] == 400
    finally:
        ip.close()


def test_a_model_with_a_request_in_flight_is_never_evicted(many, bc_data):
    import asyncio

    from roost.serve.lazy import LazyRepository

    X, _, cols = bc_data
    rows = {c: np.ascontiguousarray(X[:2, i]) for i, c in enumerate(cols)}
    repo = LazyRepository(Selection(("m1*",), ()), budget=1)  # room for none
    repo.load_all()

    async def scenario() -> None:
        async with repo.use("m10", None) as held:  # a request in flight on m10
            async with repo.use("m11", None) as other:  # another model loads: m10 may not go
                assert set(repo.resident) == {("m10", 1), ("m11", 1)}
                np.testing.assert_allclose(
                    (await other.batcher.submit(rows, 2))["probability"], ort_probability(many["m11"], cols, X[:2])
                )
            assert set(repo.resident) == {("m10", 1)}  # m11 evicted once its request ended
            assert held.batcher.alive and not held.batcher.closed
            out = await held.batcher.submit(rows, 2)  # still answers
            np.testing.assert_allclose(out["probability"], ort_probability(many["m10"], cols, X[:2]))
        assert not repo.resident and repo.used == 0

    try:
        asyncio.run(scenario())
    finally:
        repo.close(5.0)
