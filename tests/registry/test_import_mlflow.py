"""`roost runs import-mlflow`: a store written by real MLflow (the bench venv, .bench/mlflow) is read back equal.

The reference is what MLflow's own client reads from its store (search_runs, get_metric_history), never roost.
"""

import json
import math
import os
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

import roost
from roost.registry import api, importer
from roost.registry.store import default_store

HANG_GUARD_S = 600

WRITER = r"""
import json, math, sys
import mlflow
from mlflow.tracking import MlflowClient

uri, out = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
client = MlflowClient()
mlflow.set_experiment("exp-a")
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": 0.01, "depth": 6, "model": "gbm", "flag": True, "odd": "1e-3"})
    mlflow.set_tag("team", "ranking")
    for i in range(5):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    mlflow.log_metric("auc", 0.91)
    mlflow.log_metric("weird", math.nan, step=0)
    mlflow.log_metric("weird", 2.0, step=1)
    with mlflow.start_run(run_name="child", nested=True):
        mlflow.log_param("lr", 0.1)
        mlflow.log_metric("auc", 0.8, step=3)
try:
    with mlflow.start_run(run_name="boom"):
        mlflow.log_param("x", "y")
        raise ValueError("boom")
except ValueError:
    pass
mlflow.set_experiment("exp-b")
with mlflow.start_run(run_name="gone") as gone:
    mlflow.log_param("p", 1)
client.delete_run(gone.info.run_id)
mlflow.set_experiment("exp-c")  # an experiment deleted with its run
with mlflow.start_run(run_name="in-deleted-exp") as doomed:
    mlflow.log_metric("m", 1.0)
client.delete_experiment(mlflow.get_experiment_by_name("exp-c").experiment_id)
open_run = client.create_run(mlflow.get_experiment_by_name("exp-b").experiment_id, run_name="open")
client.log_metric(open_run.info.run_id, "m", 3.0, step=2)

ref = {}
exps = [mlflow.get_experiment_by_name(n).experiment_id for n in ("exp-a", "exp-b")]
for r in client.search_runs(exps, max_results=1000):
    hist = {k: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, k)) for k in r.data.metrics}
    ref[r.info.run_id] = {
        "name": r.info.run_name, "status": r.info.status, "start_time": r.info.start_time,
        "end_time": r.info.end_time, "user": r.info.user_id,
        "experiment": client.get_experiment(r.info.experiment_id).name,
        "params": r.data.params, "tags": r.data.tags, "history": hist,
    }
# MLflow's own record of when each run was deleted (its API does not expose deleted_time): the store itself
deleted = {}
for rid in (gone.info.run_id, doomed.info.run_id):
    if uri.startswith("sqlite:///"):
        import sqlite3
        con = sqlite3.connect(uri[len("sqlite:///"):])
        deleted[rid] = con.execute("SELECT deleted_time FROM runs WHERE run_uuid = ?", (rid,)).fetchone()[0]
        con.close()
    else:
        import pathlib, yaml
        root = pathlib.Path(uri[len("file://"):])
        meta = yaml.safe_load(next(root.rglob(rid + "/meta.yaml")).read_text())
        deleted[rid] = meta["deleted_time"]
json.dump({"runs": ref, "deleted": deleted}, open(out, "w"))
"""


def _write_store(py: Path, tmp_path: Path, uri: str) -> dict:
    (tmp_path / "writer.py").write_text(WRITER)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    env["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps its file store only on request
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [str(py), str(tmp_path / "writer.py"), uri, str(tmp_path / "ref.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    if proc.returncode != 0:
        pytest.fail(f"MLflow writer failed:\n{proc.stderr[-3000:]}")
    return json.loads((tmp_path / "ref.json").read_text())


def _check(ref: dict, report: importer.ImportReport) -> None:
    runs = ref["runs"]
    assert report.runs == len(runs) == 4 and report.skipped_deleted == 2 and report.skipped_nan_points == 1
    got = default_store().runs_by_ids([*runs, *ref["deleted"]])
    assert set(got) == set(runs)  # MLflow's deleted runs (one in a deleted experiment) stay behind by default
    for rid, want in runs.items():
        r = got[rid]
        assert r["experiment"] == want["experiment"] and r["name"] == want["name"]
        assert r["user"] == want["user"]
        assert round(r["start_time"].timestamp() * 1000) == want["start_time"]
        assert {k: str(v) for k, v in r["params"].items()} == want["params"]  # typed, printing as MLflow stored
        assert r["tags"] == {**want["tags"], importer.SOURCE_TAG: r["tags"][importer.SOURCE_TAG]}
        for key, points in want["history"].items():
            hist = [(h["step"], h["value"]) for h in api.metric_history(rid, key)]
            assert sorted(hist) == [tuple(p) for p in points if not math.isnan(p[1])]
        if want["status"] in ("FINISHED", "FAILED", "KILLED"):
            assert r["status"] == want["status"]
            assert round(r["end_time"].timestamp() * 1000) == want["end_time"]
        else:
            assert r["status"] == "LOST"  # no roost process owns it
    by_name = {r["name"]: r for r in got.values()}
    assert by_name["parent"]["params"] == {"lr": 0.01, "depth": 6, "model": "gbm", "flag": True, "odd": "1e-3"}
    assert by_name["child"]["parent_run_id"] == by_name["parent"]["run_id"]
    assert by_name["parent"]["metrics"]["loss"] == pytest.approx(0.2)
    found = roost.search_runs(filter="params.lr = 0.01 and metrics.auc >= 0.9", experiment="exp-a")
    assert [r["name"] for r in found] == ["parent"]


@pytest.mark.slow
def test_import_a_sqlite_store_written_by_mlflow(ws, tmp_path, cli, mlflow_python):
    ref = _write_store(mlflow_python, tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    report = importer.import_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}", default_store())
    _check(ref, report)
    code, out, err = cli("runs", "import-mlflow", f"sqlite:///{tmp_path / 'mlflow.db'}", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["runs"] == 0 and again["skipped_existing"] == 4  # repeating an import adds nothing


@pytest.mark.slow
def test_import_an_mlruns_folder_written_by_mlflow(ws, tmp_path, mlflow_python):
    ref = _write_store(mlflow_python, tmp_path, (tmp_path / "mlruns").as_uri())
    report = importer.import_mlflow(str(tmp_path / "mlruns"), default_store())
    _check(ref, report)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "mlruns"])
def test_deleted_runs_are_imported_deleted_with_mlflows_deletion_time(ws, tmp_path, kind, mlflow_python):
    """--include-deleted keeps MLflow's lifecycle: hidden, restorable, gc's age counted from MLflow's deleted_time."""
    from sqlalchemy import select

    from roost.registry import retention
    from roost.registry.tables import Run

    if kind == "sqlite":
        uri = src = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        uri, src = (tmp_path / "mlruns").as_uri(), str(tmp_path / "mlruns")
    ref = _write_store(mlflow_python, tmp_path, uri)
    report = importer.import_mlflow(src, default_store(), include_deleted=True)
    assert report.runs == len(ref["runs"]) + 2 == 6 and report.skipped_deleted == 0
    deleted = ref["deleted"]
    st = default_store()
    with st.read() as s:
        rows = {r.id: r for r in s.scalars(select(Run).where(Run.id.in_([*ref["runs"], *deleted])))}
    assert len(rows) == 6
    for rid in ref["runs"]:
        assert rows[rid].lifecycle_stage == "active" and rows[rid].hidden_at is None
    for rid, ms in deleted.items():
        assert rows[rid].lifecycle_stage == "deleted"
        assert round(rows[rid].hidden_at.replace(tzinfo=UTC).timestamp() * 1000) == ms
    listed = {r["run_id"] for r in roost.search_runs()}
    assert listed == set(ref["runs"])  # hidden from default listings, as in MLflow
    gone = next(iter(deleted))
    assert retention.change_stage(st, "restore", run_ids=[gone]).run_ids == [gone]  # restorable, as in MLflow
    assert gone in {r["run_id"] for r in roost.search_runs()}


def test_param_types_are_inferred_only_when_they_round_trip():
    assert importer.infer_param("3") == 3 and importer.infer_param("0.01") == 0.01
    assert importer.infer_param("True") is True
    assert importer.infer_param("1e-3") == "1e-3" and importer.infer_param("007") == "007"


def test_unsupported_uris_are_user_errors(ws, tmp_path):
    from roost.errors import RoostError

    with pytest.raises(RoostError, match="only MLflow's SQLite and file stores"):
        importer.import_mlflow("http://localhost:5000", default_store())
    with pytest.raises(RoostError, match="no MLflow database"):
        importer.import_mlflow(f"sqlite:///{tmp_path / 'none.db'}", default_store())
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(RoostError, match="not an MLflow tracking database"):
        importer.import_mlflow(f"sqlite:///{tmp_path / 'junk.db'}", default_store())
