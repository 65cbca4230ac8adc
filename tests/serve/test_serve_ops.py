"""Operations: registry aliases followed live, /metrics, alert rules, Parquet request logs, no torch, auth."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pyarrow.dataset as pads
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from servekit import ROOT, Server, v2_body


def wait_until(cond, timeout: float = 120.0) -> None:
    """Poll `cond`; the timeout only guards against a hang (a loaded CI machine can be slow)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_registry_alias_is_followed(ws, pkgs, bc_data, tmp_path):
    import roost

    X, _, cols = bc_data
    roost.register_model(None, "churn", str(pkgs["bc"]))
    roost.register_model(None, "churn", str(pkgs["bc2"]))
    roost.set_alias("churn", 1, "prod")
    srv = Server(
        ["churn@prod", "old=churn/1"],
        "--poll",
        "0.3",
        "--replicas",
        "2",
        cwd=ws.root,
        log=tmp_path / "log",
        env={"ROOST_WORKSPACE": str(ws.root)},
    )
    try:
        srv.wait_ready()
        body = v2_body(cols, X[:1])
        versions: list[str] = []
        with httpx.Client(base_url=srv.url, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            r = c.post("/v2/models/churn/infer", json=body)
            assert r.status_code == 200 and r.json()["model_version"] == "1"
            tf = c.post(
                "/v1/models/churn/labels/prod:predict",
                json={"instances": [{k: float(X[0, j]) for j, k in enumerate(cols)}]},
            )
            assert tf.status_code == 200
            roost.set_alias("churn", 2, "prod")

            def moved() -> bool:
                r = c.post("/v2/models/churn/infer", json=body)
                assert r.status_code == 200, r.text
                versions.append(r.json()["model_version"])
                return versions[-10:] == ["2"] * 10

            wait_until(moved)
            assert c.post("/v2/models/churn/versions/2/infer", json=body).status_code == 200
            assert c.post("/v2/models/old/infer", json=body).json()["model_version"] == "1"
    finally:
        srv.stop()


def test_unknown_registry_model_is_a_clear_error(ws, tmp_path):
    srv = Server(["ghost@prod"], cwd=ws.root, log=tmp_path / "log", env={"ROOST_WORKSPACE": str(ws.root)})
    try:
        assert srv.proc.wait(timeout=60) == 2
        assert "ghost" in srv.output()
    finally:
        srv.stop()


def test_metrics_cover_requests_latency_batches_errors_versions(server, bc_data):
    X, _, cols = bc_data
    with server.client() as c:
        for i in range(5):
            c.post("/v2/models/bc/infer", json=v2_body(cols, X[i : i + 3]))
        c.post("/v2/models/bc/infer", content=b"{")
        text = c.get("/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    req = {
        tuple(sorted(s.labels.items())): s.value
        for s in fams["roost_requests"].samples
        if s.name == "roost_requests_total"
    }
    assert req[(("code", "200"), ("model", "bc"), ("protocol", "v2"))] >= 5
    assert req[(("code", "400"), ("model", "bc"), ("protocol", "v2"))] >= 1
    counts = [
        s
        for s in fams["roost_request_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["model"] == "bc"
    ]
    assert counts and counts[0].value >= 6
    rows = [s for s in fams["roost_batch_rows"].samples if s.name.endswith("_sum") and s.labels["model"] == "bc"]
    assert rows[0].value >= 15
    assert any(s.labels == {"model": "bc", "code": "400"} for s in fams["roost_errors"].samples)
    loaded = {(s.labels["model"], s.labels["version"]): s.value for s in fams["roost_model_version_loaded"].samples}
    assert loaded == {("bc", "1"): 1.0, ("iris", "1"): 1.0, ("strings", "1"): 1.0}


def test_alert_rules_reference_real_metrics(cli, server, tmp_path):
    out = tmp_path / "rules.yaml"
    code, stdout, _ = cli("serve", "--alert-rules", str(out), "--alert-p99-ms", "250")
    assert code == 0 and "wrote" in stdout
    rules = yaml.safe_load(out.read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {"RoostHighErrorRate", "RoostHighP99Latency"} <= names
    p99 = next(r for r in rules if r["alert"] == "RoostHighP99Latency")
    assert "histogram_quantile(0.99" in p99["expr"] and p99["expr"].endswith("> 0.25")
    with server.client() as c:
        exposed = set(re.findall(r"^(roost_[a-z_]+)", c.get("/metrics").text, re.M))
    used = {m for r in rules for m in re.findall(r"roost_[a-z_]+", r["expr"])}
    assert used and used <= exposed, used - exposed


def test_request_log_parquet(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    logs = tmp_path / "logs"
    srv = Server(
        [str(pkgs["bc"]), str(pkgs["iris"])],
        "--log-requests",
        "1",
        "--log-dir",
        str(logs),
        "--replicas",
        "2",
        log=tmp_path / "log",
    )
    try:
        srv.wait_ready()
        with srv.client() as c:
            a = c.post("/v2/models/bc/infer", json=v2_body(cols, X[:5])).json()["outputs"][0]["data"]
            b = c.post("/v1/models/bc:predict", json={"instances": [{k: float(X[7, j]) for j, k in enumerate(cols)}]})
            c.post(
                "/v1/models/iris:predict",
                json={
                    "instances": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
                },
            )
            assert c.post("/v2/models/bc/infer", content=b"{").status_code == 400  # not logged
    finally:
        assert srv.stop() == 0  # SIGTERM flushes and closes the files
    files = sorted(logs.rglob("*.parquet"))
    assert files and not list(logs.rglob("*.part"))
    t = (
        pads.dataset([str(f) for f in files if "/bc/" in str(f)])
        .to_table()
        .sort_by([("_protocol", "ascending"), ("_row", "ascending")])
    )
    assert t.num_rows == 6
    assert t["_protocol"].to_pylist() == ["tfserving"] + ["v2"] * 5
    assert t["_model"].to_pylist() == ["bc"] * 6 and t["_version"].to_pylist() == ["1"] * 6
    np.testing.assert_allclose(t["pred_probability"].to_numpy()[1:], a, rtol=1e-6)
    assert t["pred_probability"][0].as_py() == pytest.approx(b.json()["predictions"][0]["probability"], rel=1e-6)
    assert t["pred_label"][0].as_py() == b.json()["predictions"][0]["label"]
    np.testing.assert_array_equal(t[cols[0]].to_numpy()[1:], X[:5, 0])
    iris = pads.dataset([str(f) for f in files if "/iris/" in str(f)]).to_table()
    assert iris.num_rows == 1 and len(iris["pred_probabilities"][0].as_py()) == 3


def test_request_logger_samples(tmp_path, pkgs):
    from roost.serve.loader import load, parse_spec, resolve
    from roost.serve.reqlog import RequestLogger

    model = load(resolve(parse_spec(str(pkgs["strings"]))))
    rl = RequestLogger(tmp_path, rate=0.5, flush_s=0.05, rotate_rows=150)
    x = {"x": np.array([1.0], np.float32), "country": np.array(["a"], object)}
    for _ in range(400):
        rl.maybe_log(model, "v2", x, {"prediction": np.array([2.0], np.float32)}, 0.001)
    rl.close()
    model.close()
    t = pads.dataset(str(tmp_path), format="parquet").to_table()
    assert 100 < t.num_rows < 300
    assert t["country"].to_pylist()[0] == "a"


def test_serving_never_imports_torch(server):
    code = (
        "import sys, roost.cli.serve, roost.serve.app, roost.serve.worker, roost.serve.fleet, "
        "roost.serve.reqlog, roost.serve.openapi; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    pids = server.worker_pids()
    assert pids
    assert "libtorch" not in open(f"/proc/{server.proc.pid}/maps").read()
    for pid in pids:
        maps = open(f"/proc/{pid}/maps").read()
        assert "onnxruntime" in maps and "libtorch" not in maps
    with server.client() as c:
        assert c.get("/admin/status").json()["torch_imported"] is False


def test_bearer_token(pkgs, tmp_path):
    srv = Server([str(pkgs["strings"])], "--token", "s3cret", log=tmp_path / "log")
    try:
        srv.wait_ready()
        body = {"instances": [{"x": 1.0, "country": "a"}]}
        with srv.client() as c:
            assert c.get("/v2/health/ready").status_code == 200
            assert c.post("/v1/models/strings:predict", json=body).status_code == 401
            ok = c.post("/v1/models/strings:predict", json=body, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
    finally:
        srv.stop()
