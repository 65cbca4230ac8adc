"""Canary rollouts (#18 item 2): a seeded per-request share goes to the canary, pinned versions always reach it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servekit import InProcess, Server, free_port, v2_body

from roost.errors import RoostError
from roost.serve.rollout import parse_canary, share
from roost.serve.worker import create_app


@pytest.fixture
def churn(ws, pkgs):
    """churn/1 (bc) and churn/2 (bc2, different weights) in the workspace registry."""
    import roost

    roost.register_model(None, "churn", str(pkgs["bc"]))
    roost.register_model(None, "churn", str(pkgs["bc2"]))
    return ws


def _infer(ip: InProcess, path: str, body: bytes, rid: str | None = None) -> dict:
    headers = {"content-type": "application/json", **({"x-request-id": rid} if rid else {})}
    status, _, out = ip.request("POST", path, body, headers)
    assert status == 200, out
    return orjson.loads(out)


def test_canary_share_is_within_5_points_over_2000_requests(churn, bc_data):
    X, _, cols = bc_data
    body = orjson.dumps(v2_body(cols, X[:1]))
    ip = InProcess(create_app(["churn/1"], canary=["churn/2=10"]))
    try:
        pinned = {v: _infer(ip, f"/v2/models/churn/versions/{v}/infer", body)["outputs"] for v in ("1", "2")}
        assert pinned["1"] != pinned["2"]  # the two versions answer differently, so who answered is visible
        versions = []
        for _ in range(2000):
            r = _infer(ip, "/v2/models/churn/infer", body)  # no id sent: the server draws a fresh one
            versions.append(r["model_version"])
            assert r["outputs"] == pinned[r["model_version"]]  # model_version names the model that answered
        pct = 100.0 * versions.count("2") / len(versions)
        assert 5.0 <= pct <= 15.0, pct
        assert set(versions) == {"1", "2"}
        status, _, text = ip.request("GET", "/metrics")
        counts = {
            s.labels["version"]: s.value
            for f in text_string_to_metric_families(text.decode())
            for s in f.samples
            if s.name == "roost_model_version_requests_total" and s.labels["model"] == "churn"
        }
        assert counts["2"] == versions.count("2") + 1 and counts["1"] == versions.count("1") + 1  # + pinned calls
    finally:
        ip.close()


def test_same_request_id_same_version_and_pinned_versions_always_reach_it(churn, bc_data):
    X, _, cols = bc_data
    body = orjson.dumps(v2_body(cols, X[:1]))
    ip = InProcess(create_app(["churn/1"], canary=["churn/2=30"], rollout_seed=7))
    try:
        for i in range(100):
            rid = f"req-{i}"
            want = "2" if share(rid, 7) < 30 else "1"  # the draw: seeded, per request id
            assert _infer(ip, "/v2/models/churn/infer", body, rid)["model_version"] == want
            assert _infer(ip, "/v2/models/churn/infer", body, rid)["model_version"] == want
            for v in ("1", "2"):
                assert _infer(ip, f"/v2/models/churn/versions/{v}/infer", body, rid)["model_version"] == v
        status, _, out = ip.request("POST", "/v2/models/churn/versions/3/infer", body)
        assert status == 404 and b"version '3'" in out
    finally:
        ip.close()


def test_share_is_uniform_and_seeded():
    draws = np.array([share(f"id{i}", 0) for i in range(20000)])
    assert draws.min() >= 0.0 and draws.max() < 100.0
    from scipy import stats

    assert stats.kstest(draws / 100.0, "uniform").pvalue > 1e-4
    other = np.array([share(f"id{i}", 1) for i in range(20000)])
    assert ((draws < 10) != (other < 10)).mean() > 0.1  # another seed splits other ids


@pytest.mark.parametrize("item", ["churn@candidate", "churn@candidate=abc", "churn@candidate=120", "=5"])
def test_bad_canary_values_are_user_errors(item):
    with pytest.raises(RoostError):
        parse_canary(item)


def test_canary_without_its_primary_is_refused(churn):
    with pytest.raises(RoostError, match="no model is served as 'churn'"):
        create_app(["other=churn/1"], canary=["churn/2=10"])


def test_tfserving_requests_are_split_too_and_pinned_versions_reach_them(churn, bc_data):
    X, _, cols = bc_data
    inst = orjson.dumps({"instances": [{c: float(X[0, j]) for j, c in enumerate(cols)}]})
    ip = InProcess(create_app(["churn/1"], canary=["churn/2=40"]))
    try:

        def tf(path: str, rid: str) -> float:
            status, _, out = ip.request("POST", path, inst, {"x-request-id": rid})
            assert status == 200, out
            pred = orjson.loads(out)["predictions"][0]
            return float(pred["probability"] if isinstance(pred, dict) else pred)

        pinned = {v: tf(f"/v1/models/churn/versions/{v}:predict", "p") for v in ("1", "2")}
        assert pinned["1"] != pytest.approx(pinned["2"])
        for i in range(200):
            rid = f"t{i}"
            want = pinned["2"] if share(rid, 0) < 40 else pinned["1"]
            assert tf("/v1/models/churn:predict", rid) == pytest.approx(want)
    finally:
        ip.close()


@pytest.mark.slow
def test_promote_and_rollback_by_moving_aliases_fail_no_request(churn, bc_data, tmp_path):
    import roost

    X, _, cols = bc_data
    roost.set_alias("churn", 1, "prod")
    roost.set_alias("churn", 2, "candidate")
    srv = Server(
        ["churn@prod"],
        "--canary",
        "churn@candidate=50",
        "--poll",
        "0.3",
        "--replicas",
        "2",
        "--grpc-port",
        str(grpc_port := free_port()),
        cwd=churn.root,
        log=tmp_path / "log",
        env={"ROOST_WORKSPACE": str(churn.root)},
    )
    try:
        srv.wait_ready()
        body = v2_body(cols, X[:1])
        import tritonclient.grpc as tg

        g = tg.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        inputs = []
        for j, col in enumerate(cols):
            inp = tg.InferInput(col, [1], "FP32")
            inp.set_data_from_numpy(X[:1, j].astype(np.float32))
            inputs.append(inp)
        grpc_versions = [g.infer("churn", inputs, request_id=f"g{i}").get_response().model_version for i in range(100)]
        assert grpc_versions == ["2" if share(f"g{i}", 0) < 50 else "1" for i in range(100)]
        g.close()
        failed = 0
        with httpx.Client(base_url=srv.url, timeout=60.0) as c:

            def run_until(expected: set[str], deadline_s: float = 120.0) -> None:
                nonlocal failed
                deadline, seen = time.monotonic() + deadline_s, []
                while time.monotonic() < deadline:
                    r = c.post("/v2/models/churn/infer", json=body)
                    failed += r.status_code != 200
                    seen.append(r.json().get("model_version"))
                    if len(seen) >= 40 and set(seen[-40:]) == expected:
                        return
                raise AssertionError(f"versions never became {expected}: {seen[-40:]}")

            run_until({"1", "2"})
            roost.set_alias("churn", 2, "prod")  # promote: both halves now answer with version 2
            run_until({"2"})
            roost.set_alias("churn", 1, "prod")  # roll back the primary; the canary still takes its share
            run_until({"1", "2"})
        assert failed == 0
    finally:
        srv.stop()


def test_export_kserve_with_canary_writes_canary_traffic_percent(churn, cli, pkgs, tmp_path):
    import json
    from pathlib import Path

    import jsonschema
    import yaml
    from test_serve_export import ISVC_SCHEMA_JSON

    import roost

    roost.set_alias("churn", 1, "prod")
    roost.set_alias("churn", 2, "candidate")
    out = tmp_path / "k"
    code, _, err = cli("serve", "churn@prod", "--canary", "churn@candidate=10", "--export", "kserve", str(out))
    assert code == 0, err
    doc = yaml.safe_load((out / "inferenceservice.yaml").read_text())
    jsonschema.validate(doc, json.loads(ISVC_SCHEMA_JSON))
    pred = doc["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10  # KServe: this revision takes 10 %, the last rolled-out one the rest
    assert doc["metadata"]["name"] == "churn" and doc["metadata"]["annotations"]["roost.model/version"] == "2"
    assert (out / "model" / "model.onnx").read_bytes() == (Path(pkgs["bc2"]) / "model.onnx").read_bytes()
    plain = tmp_path / "p"
    assert cli("serve", "churn@prod", "--export", "kserve", str(plain))[0] == 0
    assert (
        "canaryTrafficPercent" not in yaml.safe_load((plain / "inferenceservice.yaml").read_text())["spec"]["predictor"]
    )
    code, _, err = cli("serve", "churn@prod", "--canary", "other/1=10", "--export", "kserve", str(tmp_path / "x"))
    assert code == 2 and "not a version of" in err


# ---- shadow (#18 item 3) --------------------------------------------------------------------------------------
def _ort_probability(pkg_dir, cols: list[str], X: np.ndarray) -> np.ndarray:
    """P(class 1) straight from onnxruntime on the package file: the reference the shadow records must match."""
    from pathlib import Path

    import onnxruntime as ort

    sess = ort.InferenceSession(str(Path(pkg_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {c: X[:, j].astype(np.float32) for j, c in enumerate(cols)}
    return np.asarray(sess.run(["probability"], feeds)[0], dtype=np.float64).reshape(-1)


def _shadow_rows(log_dir) -> Any:
    import pyarrow.parquet as pq

    files = sorted((log_dir / "shadow" / "churn").rglob("*.parquet"))
    return pa_concat([pq.read_table(f) for f in files]).to_pandas()


def pa_concat(tables):
    import pyarrow as pa

    return pa.concat_tables(tables)


def _metric(ip: InProcess, name: str, **labels: str) -> float:
    _, _, text = ip.request("GET", "/metrics")
    return sum(
        s.value
        for f in text_string_to_metric_families(text.decode())
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_shadow_records_match_an_onnxruntime_recompute_and_primary_answers_are_unchanged(
    churn, pkgs, bc_data, tmp_path
):
    X, _, cols = bc_data
    rng = np.random.default_rng(3)
    ip = InProcess(create_app(["churn/1"], shadow=["churn/2"], log_dir=str(tmp_path / "logs")))
    sent: dict[str, np.ndarray] = {}
    try:
        for i in range(300):
            idx = rng.choice(len(X), size=int(rng.integers(1, 4)), replace=False)
            rid = f"r{i}"
            sent[rid] = X[idx]
            r = _infer(ip, "/v2/models/churn/infer", orjson.dumps(v2_body(cols, X[idx])), rid)
            assert r["model_version"] == "1"  # the shadow never answers
            want = _ort_probability(pkgs["bc"], cols, X[idx])
            np.testing.assert_allclose(r["outputs"][0]["data"], want, rtol=1e-5, atol=1e-6)
        mirrored = _metric(ip, "roost_shadow_requests_total", outcome="mirrored")
        dropped = _metric(ip, "roost_shadow_requests_total", outcome="dropped")
    finally:
        ip.close()  # waits for queued mirrors and writes the buffered rows
    df = _shadow_rows(tmp_path / "logs")
    assert mirrored + dropped >= 290 and df["_request_id"].nunique() >= mirrored  # every mirror recorded
    assert set(df["_request_id"]) <= set(sent)
    assert (df["primary_version"] == "1").all() and (df["shadow_version"] == "2").all()
    for rid, g in df.groupby("_request_id"):
        g = g.sort_values("_row")
        p = _ort_probability(pkgs["bc"], cols, sent[rid])
        s = _ort_probability(pkgs["bc2"], cols, sent[rid])
        np.testing.assert_allclose([v[0] for v in g["primary"]], p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([v[0] for v in g["shadow"]], s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g["abs_diff"], np.abs(p - s), rtol=1e-5, atol=1e-6)
        assert list(g["agree"]) == list((p >= 0.5) == (s >= 0.5))
        assert (g["primary_latency_ms"] > 0).all() and (g["shadow_latency_ms"] > 0).all()
    assert 0 < df["agree"].mean() < 1  # bc2 learnt flipped labels: the comparison sees disagreement


def test_shadow_percent_mirrors_the_seeded_share_of_request_ids(churn, bc_data, tmp_path):
    from roost.serve.rollout import SHADOW_SALT

    X, _, cols = bc_data
    body = orjson.dumps(v2_body(cols, X[:1]))
    ip = InProcess(create_app(["churn/1"], shadow=["churn/2=30"], log_dir=str(tmp_path / "logs")))
    try:
        for i in range(2000):
            _infer(ip, "/v2/models/churn/infer", body, f"id-{i}")
    finally:
        ip.close()
    got = set(_shadow_rows(tmp_path / "logs")["_request_id"])
    want = {f"id-{i}" for i in range(2000) if share(f"id-{i}", SHADOW_SALT) < 30}
    assert got == want and abs(100 * len(got) / 2000 - 30) <= 5


class _Broken:
    """A stand-in ONNX session for the shadow: slow, or failing."""

    def __init__(self, real, sleep_s: float = 0.0, fail: bool = False) -> None:
        self.real, self.sleep_s, self.fail = real, sleep_s, fail

    def run(self, names, feeds):
        time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("shadow exploded")
        return self.real.run(names, feeds)


@pytest.mark.parametrize("mode", ["slow", "failing"])
def test_slow_or_failing_shadow_never_changes_primary_answers(churn, pkgs, bc_data, tmp_path, mode):
    X, _, cols = bc_data
    app = create_app(["churn/1"], shadow=["churn/2"], log_dir=str(tmp_path / "logs"))
    shadow = app.repo.shadow("churn")[0]
    shadow.session = _Broken(shadow.session, sleep_s=0.05 if mode == "slow" else 0.0, fail=mode == "failing")
    app.shadow.max_pending = 4
    ip = InProcess(app)
    want = _ort_probability(pkgs["bc"], cols, X[:200])
    try:
        for i in range(200):
            r = _infer(ip, "/v2/models/churn/infer", orjson.dumps(v2_body(cols, X[i : i + 1])), f"q{i}")
            assert r["model_version"] == "1"
            np.testing.assert_allclose(r["outputs"][0]["data"], want[i : i + 1], rtol=1e-5, atol=1e-6)
        outcome = "dropped" if mode == "slow" else "failed"
        assert _metric(ip, "roost_shadow_requests_total", outcome=outcome) > 0
    finally:
        ip.close()


@pytest.mark.slow
def test_fleet_with_shadow_writes_comparisons_and_counts_them(churn, bc_data, tmp_path):
    X, _, cols = bc_data
    srv = Server(
        ["churn/1"],
        "--shadow",
        "churn/2",
        "--replicas",
        "2",
        "--log-dir",
        str(tmp_path / "logs"),
        cwd=churn.root,
        log=tmp_path / "log",
        env={"ROOST_WORKSPACE": str(churn.root)},
    )
    try:
        srv.wait_ready()
        with httpx.Client(base_url=srv.url, timeout=60.0) as c:
            for i in range(50):
                r = c.post(
                    "/v2/models/churn/infer", json=v2_body(cols, X[i : i + 1]), headers={"x-request-id": f"f{i}"}
                )
                assert r.status_code == 200 and r.json()["model_version"] == "1"
    finally:
        assert srv.stop() == 0
    df = _shadow_rows(tmp_path / "logs")
    assert set(df["_request_id"]) == {f"f{i}" for i in range(50)}


def test_two_shadow_logs_flushing_in_the_same_second_keep_both_files(tmp_path):
    """File names are unique per process, not per writer: a second writer never overwrites the first's file."""
    import datetime as dt

    import pyarrow.parquet as pq

    from roost.serve.rollout import ShadowLog

    now = dt.datetime.now(dt.UTC)
    written = []
    for i in range(2):
        log = ShadowLog(tmp_path, flush_rows=10**9)
        log.add([{"model": "m", "_ts": now, "_request_id": f"r{i}", "abs_diff": float(i)}])
        written.append(log.flush())
    assert written[0] != written[1]
    ids = sorted(pq.read_table(p)["_request_id"][0].as_py() for p in (tmp_path / "shadow" / "m").rglob("*.parquet"))
    assert ids == ["r0", "r1"]
