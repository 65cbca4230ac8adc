"""The MLflow artifact proxy on an s3:// artifact root (moto's S3 server): streamed upload and download, listing,
the upload size limit; what lands in the bucket is read back with boto3, independently of roost."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import bearer, new_account


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    import fsspec.config

    sys.path.insert(0, str(Path(__file__).parents[1] / "registry"))
    try:
        srv = importlib.import_module("s3_helpers").MotoServer()
    finally:
        sys.path.pop(0)
    saved = {k: dict(v) for k, v in fsspec.config.conf.items()}
    for k, v in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", srv.url)
    fsspec.config.conf.clear()
    fsspec.config.set_conf_env(fsspec.config.conf)
    yield srv
    fsspec.config.conf.clear()
    fsspec.config.conf.update(saved)
    srv.stop()


def test_artifacts_stream_through_the_proxy_to_s3(ws: Any, s3: Any) -> None:
    from starlette.testclient import TestClient

    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    settings = ServerSettings(ws.store_url, "s3://roost-artifacts/srv", max_upload_bytes=2 * 1024**2)
    app = create_server_app(settings)
    token = new_account(settings.store(), "alice")

    base = "/api/2.0/mlflow"
    with TestClient(app, headers=bearer(token)) as c:
        eid = c.post(f"{base}/experiments/create", json={"name": "e"}).json()["experiment_id"]
        rid = c.post(f"{base}/runs/create", json={"experiment_id": eid}).json()["run"]["info"]["run_id"]
        proxy = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts"
        blob = os.urandom(1_500_000)
        assert c.put(f"{proxy}/data/w.bin", content=blob).status_code == 200
        key = f"srv/{eid}/{rid}/artifacts/data/w.bin"
        assert s3.client().get_object(Bucket="roost-artifacts", Key=key)["Body"].read() == blob
        got = c.get(f"{proxy}/data/w.bin")
        assert got.status_code == 200 and got.content == blob
        listing = c.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": f"{eid}/{rid}/artifacts/data"}).json()
        assert listing == {"files": [{"path": "w.bin", "is_dir": False, "file_size": len(blob)}]}

        too_big = c.put(f"{proxy}/data/big.bin", content=os.urandom(3 * 1024**2))
        assert too_big.status_code == 413 and too_big.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert s3.keys(f"srv/{eid}/{rid}/artifacts/") == {key}  # nothing of the refused upload is left

        assert c.delete(f"{proxy}/data/w.bin").status_code == 200
        assert s3.keys(f"srv/{eid}/{rid}/artifacts/") == set()
