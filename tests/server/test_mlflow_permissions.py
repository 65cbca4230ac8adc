"""The MLflow endpoints ask roost.server.permissions before reading or writing, and answer MLflow's codes.

The permission rules are the identity helper's (a placeholder that allows all until it lands): here they are
replaced by a role table written in the test, with the contract's semantics (admin aside: highest grant, else the
default role; require → Forbidden below the role needed). In-process app; identities set as the auth middleware does.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import bearer, new_account

USERS = ("alice", "bob", "carol")  # alice creates 'exp' (manage); bob gets read on it; carol: default 'none'


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def client(request: pytest.FixtureRequest, ws: Any, tmp_path: Any) -> Any:
    from starlette.testclient import TestClient

    from roost.registry import grants
    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    store_url = request.getfixturevalue("pg_database")() if request.param == "postgresql" else ws.store_url
    settings = ServerSettings(store_url, f"file://{tmp_path / 'art'}", default_role="none")
    app = create_server_app(settings)
    for name in USERS:
        TOKENS[name] = new_account(settings.store(), name)
    grants.grant(settings.store(), "bob", "experiment", "exp", "read")
    with TestClient(app) as c:
        yield c, settings


TOKENS: dict[str, str] = {}


def _as(user: str) -> dict[str, str]:
    return bearer(TOKENS[user])


def test_read_role_cannot_log_and_none_cannot_read(client: Any) -> None:
    c, settings = client
    base = "/api/2.0/mlflow"
    eid = c.post(f"{base}/experiments/create", json={"name": "exp"}, headers=_as("alice")).json()["experiment_id"]
    run = c.post(f"{base}/runs/create", json={"experiment_id": eid}, headers=_as("alice")).json()["run"]
    rid = run["info"]["run_id"]

    # bob reads, but may not log: PERMISSION_DENIED 403, nothing written
    assert c.get(f"{base}/runs/get", params={"run_id": rid}, headers=_as("bob")).status_code == 200
    r = c.post(f"{base}/runs/log-metric", json={"run_id": rid, "key": "acc", "value": 1, "step": 0}, headers=_as("bob"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = c.put(f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/x.bin", content=b"x", headers=_as("bob"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = c.post(f"{base}/runs/delete", json={"run_id": rid}, headers=_as("bob"))
    assert r.status_code == 403
    assert settings.store().metric_history(rid) == []
    assert settings.store().get_run(rid)["lifecycle_stage"] == "active"

    # carol (default role none) sees nothing of it, and learns nothing from the answer
    r = c.get(f"{base}/runs/get", params={"run_id": rid}, headers=_as("carol"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = c.get(f"{base}/experiments/get-by-name", params={"experiment_name": "exp"}, headers=_as("carol"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    # a name nobody created is 404, as MLflow answers: mlflow.set_experiment then creates it (carol may create)
    r = c.get(f"{base}/experiments/get-by-name", params={"experiment_name": "carols"}, headers=_as("carol"))
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    r = c.post(f"{base}/experiments/create", json={"name": "carols"}, headers=_as("carol"))
    assert r.status_code == 200, r.text
    found = c.post(f"{base}/experiments/search", json={}, headers=_as("carol")).json()
    assert "exp" not in [e["name"] for e in found.get("experiments", [])]
    r = c.post(f"{base}/runs/search", json={"experiment_ids": [eid]}, headers=_as("carol"))
    assert r.status_code == 403

    # alice logs and deletes (manage)
    ok = c.post(
        f"{base}/runs/log-metric", json={"run_id": rid, "key": "acc", "value": 1, "step": 0}, headers=_as("alice")
    )
    assert ok.status_code == 200
    assert c.post(f"{base}/runs/delete", json={"run_id": rid}, headers=_as("alice")).status_code == 200
    assert settings.store().get_run(rid)["lifecycle_stage"] == "deleted"


def test_errors_in_mlflow_shape(client: Any) -> None:
    c, _ = client
    base = "/api/2.0/mlflow"
    r = c.get(f"{base}/runs/get", params={"run_id": "0" * 32}, headers=_as("alice"))
    assert (r.status_code, r.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    c.post(f"{base}/experiments/create", json={"name": "exp"}, headers=_as("alice"))
    r = c.post(f"{base}/experiments/create", json={"name": "exp"}, headers=_as("alice"))
    assert (r.status_code, r.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    r = c.post(f"{base}/runs/search", json={"experiment_ids": ["1"], "filter": "metrics.acc >"}, headers=_as("alice"))
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    r = c.post(f"{base}/traces", json={}, headers=_as("alice"))
    assert (r.status_code, r.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    eid = c.get(f"{base}/experiments/get-by-name", params={"experiment_name": "exp"}, headers=_as("alice")).json()
    rid = c.post(
        f"{base}/runs/create", json={"experiment_id": eid["experiment"]["experiment_id"]}, headers=_as("alice")
    )
    run_id = rid.json()["run"]["info"]["run_id"]
    assert (
        c.post(
            f"{base}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"}, headers=_as("alice")
        ).status_code
        == 200
    )
    r = c.post(f"{base}/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.2"}, headers=_as("alice"))
    assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    exp_id = eid["experiment"]["experiment_id"]
    traversal = f"/api/2.0/mlflow-artifacts/artifacts/{exp_id}/{run_id}/artifacts/a/..%2F..%2F..%2Fx"
    r = c.put(traversal, content=b"x", headers=_as("alice"))
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_oversized_json_body_is_refused_and_nothing_logged(ws: Any, tmp_path: Any) -> None:
    from starlette.testclient import TestClient

    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    settings = ServerSettings(ws.store_url, f"file://{tmp_path / 'art'}", max_body_bytes=10_000)
    app = create_server_app(settings)
    token = new_account(settings.store(), "alice")

    with TestClient(app, headers=bearer(token)) as c:
        base = "/api/2.0/mlflow"
        eid = c.post(f"{base}/experiments/create", json={"name": "e"}).json()["experiment_id"]
        rid = c.post(f"{base}/runs/create", json={"experiment_id": eid}).json()["run"]["info"]["run_id"]
        metrics = [{"key": "m", "value": i, "step": i, "timestamp": 1} for i in range(1000)]  # ~50 kB of JSON
        r = c.post(f"{base}/runs/log-batch", json={"run_id": rid, "metrics": metrics})
        assert (r.status_code, r.json()["error_code"]) == (413, "INVALID_PARAMETER_VALUE")
        assert settings.store().metric_history(rid) == []
        ok = c.post(f"{base}/runs/log-batch", json={"run_id": rid, "metrics": metrics[:10]})
        assert ok.status_code == 200 and len(settings.store().metric_history(rid)) == 10
