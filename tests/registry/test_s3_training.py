"""`roost.train` with ROOST_ARTIFACTS=s3://…: runs stage their artifacts locally and upload them, against moto's
S3 server on loopback. Covers FINISHED/KILLED/FAILED runs, registering and loading the package from S3, and an
upload that fails at the end (the staging folder is kept and named)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import roost
from roost.errors import RoostError

sys.path.insert(0, str(Path(__file__).parent))  # s3_helpers (importlib import mode)
pytest.importorskip("s3fs", reason="S3 artifacts need s3fs (pip install 'roost[s3]')")

from helpers import mixed_config, mixed_frame, mixed_parquet
from s3_helpers import MotoServer, free_port

pytestmark = pytest.mark.services
BUCKET = "s3://roost-artifacts/"


@pytest.fixture
def data_file(tmp_path):
    return mixed_parquet(tmp_path / "mixed.parquet", 400)


def _files(srv: MotoServer, run_id: str) -> set[str]:
    """The run's artifact paths in the bucket, relative to its artifact root."""
    uri = roost.get_run(run_id)["artifact_uri"]
    assert uri.startswith(BUCKET + "team-a/")
    prefix = uri[len(BUCKET) :].rstrip("/") + "/"
    return {k[len(prefix) :] for k in srv.keys(prefix)}


def _staging(ws, run_id: str) -> Path:
    return ws.state_dir / "staging" / run_id


def test_train_uploads_everything_registers_and_serves_from_s3(s3_server, s3_workspace, data_file, tmp_path):
    from roost import workspace

    s3_workspace(s3_server.url)
    ws = s3_workspace.ws
    res = roost.train(mixed_config(data_file, register="s3-clicks"))
    run = roost.get_run(res.run_id)
    assert run["status"] == "FINISHED" and run["artifact_uri"].startswith(BUCKET)
    files = _files(s3_server, res.run_id)
    assert {
        "config.yaml",
        "config.resolved.yaml",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "model/roost-model.yaml",
        "model/signature.json",
    } <= files, sorted(files)
    assert any(f.startswith("tensorboard/events.out.tfevents.") for f in files), sorted(files)
    assert not _staging(ws, res.run_id).exists()
    assert not any((ws.state_dir / "staging").iterdir())
    # TensorBoard (CLI and the UI's button) reads the events from a cached copy of what is on S3
    from roost.training.tensorboard import run_logdir
    from roost.ui.tensorboard import spec_for

    tb = run_logdir(res.run_id)
    events = sorted(p.name for p in tb.glob("events.out.tfevents.*"))
    assert events and {f"tensorboard/{e}" for e in events} == {f for f in files if f.startswith("tensorboard/")}
    assert ws.state_dir / "cache" in tb.parents and [d for _, d in spec_for([run])] == [str(tb)]
    # the package the result points at is a local copy of what is on S3
    assert res.package_path.is_dir() and ws.state_dir in res.package_path.parents
    pkg_files = {
        f"model/{p.relative_to(res.package_path).as_posix()}" for p in res.package_path.rglob("*") if p.is_file()
    }
    assert pkg_files == {f for f in files if f.startswith("model/")}
    # registered from S3, loaded by name (downloaded into the workspace cache)
    assert res.version == 1 and run["tags"]["roost.registered"] == "s3-clicks/1"
    v = roost.resolve_model("s3-clicks/1")
    assert v.source == run["artifact_uri"] + "/model" and v.meta["run_id"] == res.run_id
    assert ws.state_dir / "cache" in v.local_path.parents
    pred = roost.load_model("s3-clicks/1")
    assert pred.meta["parity_max_abs_diff"] <= 1e-5  # the package's own check against the trained model
    rows = mixed_frame(60, seed=7)
    out = pred.predict(rows)
    # independent check: the same config trained with local artifacts predicts the same
    local = workspace.use(workspace.load(ws.root, artifacts=str(tmp_path / "local-artifacts")))
    try:
        res_local = roost.train(mixed_config(data_file))
    finally:
        workspace.use(ws)
    assert str(res_local.package_path).startswith(str(tmp_path / "local-artifacts"))
    assert local.artifacts == str(tmp_path / "local-artifacts")
    np.testing.assert_allclose(out, roost.load_model(res_local.package_path).predict(rows), atol=1e-6)
    assert res.metrics == pytest.approx(res_local.metrics, abs=1e-9, nan_ok=True)


def test_auto_on_s3_keeps_the_winner_package(s3_server, s3_workspace, data_file):
    s3_workspace(s3_server.url)
    res = roost.train(
        mixed_config(
            data_file,
            model={"type": "auto", "params": {"candidates": ["logreg", "lightgbm"]}},
            trainer={},
            register="s3-auto",
        )
    )
    parent = roost.get_run(res.run_id)
    assert parent["status"] == "FINISHED" and parent["tags"]["roost.auto.selected"] == res.model_type
    assert {"model/roost-model.yaml", "model/signature.json", "config.resolved.yaml"} <= _files(s3_server, res.run_id)
    children = [r for r in roost.search_runs() if r["parent_run_id"] == res.run_id]
    assert len(children) == 2 and all("model/signature.json" in _files(s3_server, c["run_id"]) for c in children)
    assert not any((s3_workspace.ws.state_dir / "staging").iterdir())
    pred = roost.load_model("s3-auto/1")
    assert pred.meta["model_type"] == res.model_type
    rows = mixed_frame(40, seed=5)
    np.testing.assert_allclose(pred.predict(rows), roost.load_model(res.package_path).predict(rows), atol=1e-7)


@pytest.mark.parametrize("how", ["KILLED", "FAILED"])
def test_killed_and_failed_runs_still_upload(s3_server, s3_workspace, data_file, monkeypatch, how):
    from roost.training import callbacks
    from roost.training.api import Interrupted

    s3_workspace(s3_server.url)
    real = callbacks.RunLogger.on_epoch_end

    def stop(self, state, logs):  # after epoch 1 was checkpointed
        real(self, state, logs)
        if state.epoch == 1:
            raise KeyboardInterrupt if how == "KILLED" else RuntimeError("boom")

    monkeypatch.setattr(callbacks.RunLogger, "on_epoch_end", stop)
    with pytest.raises(Interrupted if how == "KILLED" else RuntimeError):
        roost.train(mixed_config(data_file))
    (run,) = roost.search_runs()
    assert run["status"] == how
    files = _files(s3_server, run["run_id"])
    assert {"config.yaml", "config.resolved.yaml", "checkpoints/last.pt"} <= files, sorted(files)
    assert any(f.startswith("tensorboard/events.out.tfevents.") for f in files)
    assert not any(f.startswith("model/") for f in files)
    assert not _staging(s3_workspace.ws, run["run_id"]).exists()
    if how == "KILLED":  # the checkpoint comes back down from S3 and training goes on
        monkeypatch.setattr(callbacks.RunLogger, "on_epoch_end", real)
        res = roost.train(resume=run["run_id"], overrides=["trainer.epochs=3"])
        new = roost.get_run(res.run_id)
        assert new["status"] == "FINISHED" and new["tags"]["roost.resumed_from"] == run["run_id"]
        hist = roost.registry.api.metric_history(res.run_id, "val_loss")
        assert [h["step"] for h in hist] == [2, 3]  # epoch 1 was done before the interruption
        assert any(f.startswith("model/") for f in _files(s3_server, res.run_id))


def test_upload_failure_at_end_keeps_the_staging_folder(s3_workspace, tmp_path, cli):
    import json

    from roost.registry.api import STAGED_TAG

    srv = MotoServer()
    try:
        s3_workspace(srv.url)
        early = tmp_path / "early.txt"
        early.write_text("sent at once")
        with pytest.raises(RoostError) as info:
            with roost.start_run(name="s3-down") as run:
                run.log_artifact(early)
                assert (run.artifact_dir / "early.txt").read_text() == "sent at once"  # a staged copy too
                (run.artifact_dir / "sub").mkdir()
                (run.artifact_dir / "sub" / "late.bin").write_bytes(b"\x00" * 100)
                srv.stop()  # the store goes away before the run ends
    finally:
        srv.stop()
    staged = _staging(s3_workspace.ws, run.id)
    msg = info.value.message
    assert f"kept in {staged}" in msg and "cannot reach the S3 endpoint" in msg and run.id in msg
    assert f"roost runs upload-staged {run.id}" in info.value.hint
    assert sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()) == [
        "early.txt",
        "sub/late.bin",
    ]
    row = roost.get_run(run.id)
    assert row["status"] == "FINISHED" and row["tags"][STAGED_TAG] == str(staged)
    # the store is back (a fresh, empty one here): the kept files go up and the folder goes away
    back = MotoServer()
    try:
        s3_workspace(back.url)
        code, out, err = cli("runs", "upload-staged", run.id[:8], "--json")
        assert code == 0, err
        assert sorted(json.loads(out)["uploaded"]) == ["early.txt", "sub/late.bin"]
        code, _, err = cli("runs", "upload-staged", run.id)  # nothing left: a clear error, not a traceback
        assert code == 2 and "no staged artifacts" in err
        assert _files(back, run.id) == {"early.txt", "sub/late.bin"}
        assert not staged.exists() and STAGED_TAG not in roost.get_run(run.id)["tags"]
        assert run.local_artifact("sub/late.bin").read_bytes() == b"\x00" * 100  # downloaded copy
    finally:
        back.stop()


def test_store_lost_mid_training_keeps_every_file(s3_workspace, data_file, monkeypatch):
    """The server dies during training: exporting the package fails, the run is FAILED, nothing is lost."""
    from roost.training import callbacks

    srv = MotoServer()
    real = callbacks.RunLogger.on_epoch_end

    def die(self, state, logs):
        real(self, state, logs)
        if state.epoch == 1:
            srv.stop()

    monkeypatch.setattr(callbacks.RunLogger, "on_epoch_end", die)
    try:
        s3_workspace(srv.url)
        with pytest.raises(RoostError, match="cannot reach the S3 endpoint") as info:
            roost.train(mixed_config(data_file))
    finally:
        srv.stop()
    (run,) = roost.search_runs()
    staged = _staging(s3_workspace.ws, run["run_id"])
    assert run["status"] == "FAILED"
    assert any(f"kept in {staged}" in n for n in getattr(info.value, "__notes__", []))
    for f in ("config.yaml", "checkpoints/last.pt", "checkpoints/best.pt", "model/roost-model.yaml"):
        assert (staged / f).is_file(), f
    assert list((staged / "tensorboard").glob("events.out.tfevents.*"))


def test_register_reads_the_package_through_the_guarded_store(s3_workspace):
    """An unreachable endpoint while registering: the quick, redacted RoostError of roost.artifacts."""
    from roost.registry import modelreg

    s3_workspace(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RoostError, match="cannot reach the S3 endpoint http://127.0.0.1:") as info:
        modelreg._read_remote_package_files("s3://roost-artifacts/team-a/1/abc/artifacts/model")
    assert "FSSPEC_S3_ENDPOINT_URL" in info.value.hint
