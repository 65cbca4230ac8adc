"""Artifacts on S3 behind the proxy: the server holds the S3 credentials, the client only the server's URL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import roost
from roost.registry import api

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from s3_helpers import MotoServer

from .conftest import ServerProc


@pytest.fixture
def s3_server(tmp_path: Path):
    moto = MotoServer()
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": moto.url}  # fmt: skip
    srv = ServerProc(tmp_path / "server", artifacts="s3://roost-artifacts/team", env=env)
    srv.start()
    yield srv, moto
    srv.stop()
    moto.stop()


def test_s3_artifacts_and_models_through_the_proxy(s3_server, ws, monkeypatch, tmp_path: Path) -> None:
    from roost.registry import backend

    srv, moto = s3_server
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FSSPEC_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)  # the client has no storage credentials at all
    monkeypatch.setenv("ROOST_SERVER", srv.url)
    monkeypatch.setenv("ROOST_TOKEN", srv.token)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    backend.reset()
    model = tmp_path / "model"
    model.mkdir()
    (model / "roost-model.yaml").write_text("flavor: test\n")
    (model / "weights.bin").write_bytes(b"w" * 70_000)
    with roost.start_run("s3") as run:
        roost.log_artifact(model, "model")
        (run.artifact_dir / "later.txt").write_text("staged, uploaded at end")
    keys = moto.keys("team/")
    assert any(k.endswith(f"{run.id}/artifacts/model/weights.bin") for k in keys)
    assert any(k.endswith(f"{run.id}/artifacts/later.txt") for k in keys)
    v = api.register_model(run.id, "s3m")
    assert v.meta == {"flavor": "test"}  # read by the server from S3
    api.set_alias("s3m", v.version, "prod")
    got = api.resolve_model("s3m@prod")
    assert got.local_path is not None and (got.local_path / "weights.bin").read_bytes() == b"w" * 70_000
    assert got.source.startswith(f"roost+{srv.url}/api/v1/artifacts/runs/{run.id}/")
