"""Artifacts on S3 through fsspec/s3fs, against moto's S3-compatible server started on loopback."""

import shutil
from pathlib import Path

import pytest

import roost


@pytest.mark.services
def test_artifacts_and_models_on_s3(s3_endpoint, tmp_path, monkeypatch):
    from roost import artifacts, workspace

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("ROOST_ARTIFACTS", "s3://roost-artifacts/team-a")
    monkeypatch.delenv("ROOST_STORE_URL", raising=False)
    import fsspec.config

    fsspec.config.conf.clear()
    fsspec.config.set_conf_env(fsspec.config.conf)
    w = roost.init(tmp_path / "w")
    monkeypatch.chdir(w.root)
    workspace.use(w)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "model.onnx").write_bytes(b"onnx-bytes")
    (pkg / "roost-model.yaml").write_text("framework: onnx\ntask: binary\n")
    (tmp_path / "notes.txt").write_text("hello s3")
    with roost.start_run(name="s3") as run:
        assert run.artifact_uri.startswith("s3://roost-artifacts/team-a/")
        run.log_artifact(tmp_path / "notes.txt")
        run.log_artifacts(pkg, "model")
        with pytest.raises(roost.RoostError):
            run.log_artifact(tmp_path / "notes.txt", "../../escape.txt")
    files = {f["path"]: f["size"] for f in artifacts.list_files(run.artifact_uri)}
    assert files == {
        "notes.txt": 8,
        "model/model.onnx": 10,
        "model/roost-model.yaml": len((pkg / "roost-model.yaml").read_bytes()),
    }
    import boto3

    keys = {
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket="roost-artifacts")["Contents"]
    }
    assert any(k.endswith("/artifacts/model/model.onnx") for k in keys) and not any("escape" in k for k in keys)
    v = roost.register_model(run.id, "s3model", "model")
    assert v.source.startswith("s3://") and v.meta == {"framework": "onnx", "task": "binary"}
    local = roost.resolve_model("s3model/1").local_path
    assert Path(local, "model.onnx").read_bytes() == b"onnx-bytes"
    assert str(local).startswith(str(w.state_dir))
    workspace.use(None)
    shutil.rmtree(tmp_path / "w", ignore_errors=True)
