import math
from pathlib import Path

import pytest

import roost
from roost.errors import ConflictError, NotFoundError, RoostError
from roost.registry import modelreg
from roost.registry.store import default_store


def test_run_roundtrip_every_field(ws):
    with roost.start_run(
        experiment="exp-a",
        name="first",
        params={"lr": 0.01, "layers": 3, "opt": "adam", "bn": False},
        tags={"team": "ads"},
    ) as run:
        run.log_metric("loss", 0.9, step=0)
        run.log_metric("loss", 0.5, step=1)
        run.log_metrics({"auc": 0.8, "acc": 0.7}, step=1)
        run.set_tag("stage", "dev")
        rid = run.id
    r = roost.get_run(rid)
    assert r["experiment"] == "exp-a" and r["name"] == "first" and r["status"] == "FINISHED"
    assert r["params"] == {"lr": 0.01, "layers": 3, "opt": "adam", "bn": False}
    assert type(r["params"]["layers"]) is int and type(r["params"]["bn"]) is bool
    assert r["metrics"] == {"loss": 0.5, "auc": 0.8, "acc": 0.7}
    assert r["tags"] == {"team": "ads", "stage": "dev"}
    assert r["start_time"].tzinfo is not None and r["end_time"] >= r["start_time"]
    assert r["user"] and r["source"]
    hist = roost.registry.api.metric_history(rid, "loss")
    assert [(h["step"], h["value"]) for h in hist] == [(0, 0.9), (1, 0.5)]
    # prefix lookup
    assert roost.get_run(rid[:10])["run_id"] == rid


def test_git_commit_and_dirty_flag_recorded(ws, tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "a@b"], ["git", "config", "user.name", "a"]):
        subprocess.run(cmd, cwd=repo, check=True)
    (repo / "f.txt").write_text("x")
    subprocess.run(["git", "add", "f.txt"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "c"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    with roost.start_run() as r:
        pass
    assert roost.get_run(r.id)["git_commit"] == head and roost.get_run(r.id)["git_dirty"] is False
    (repo / "f.txt").write_text("changed")
    with roost.start_run() as r2:
        pass
    assert roost.get_run(r2.id)["git_dirty"] is True


def test_latest_metric_is_by_step_not_by_call_order(ws):
    with roost.start_run() as run:
        run.log_metric("m", 5.0, step=10)
        run.log_metric("m", 1.0, step=3)  # a late, older point
    assert roost.get_run(run.id)["metrics"]["m"] == 5.0
    assert len(roost.registry.api.metric_history(run.id, "m")) == 2


def test_statuses_from_context_manager(ws):
    with pytest.raises(ValueError):
        with roost.start_run(name="boom"):
            raise ValueError("x")
    with pytest.raises(KeyboardInterrupt):
        with roost.start_run(name="ctrlc"):
            raise KeyboardInterrupt
    st = {r["name"]: r["status"] for r in roost.search_runs()}
    assert st == {"boom": "FAILED", "ctrlc": "KILLED"}


def test_params_immutable_and_bad_metrics(ws):
    with roost.start_run() as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)  # same value is fine
        with pytest.raises(ConflictError):
            run.log_param("lr", 0.2)
        with pytest.raises(RoostError):
            run.log_metric("x", float("nan"))
        with pytest.raises(RoostError):
            run.log_metric("x", "abc")


def test_nested_runs_record_parent(ws):
    with roost.start_run(name="parent") as p:
        with roost.start_run(name="child", parent_run_id=p.id) as c:
            assert roost.active_run() is c
            roost.log_metric("v", 1.0)
        assert roost.active_run() is p
    assert roost.get_run(c.id)["parent_run_id"] == p.id
    assert roost.get_run(c.id)["metrics"] == {"v": 1.0}


def test_delete_run_is_a_restorable_soft_delete(ws):
    """roost.delete_run(id) means what delete_runs means (MLflow's delete_run): hidden, restorable, removed by gc."""
    from roost.errors import RoostError

    with roost.start_run(params={"a": 1}) as run:
        run.log_metric("m", 1.0)
    roost.delete_run(run.id[:8])
    assert roost.get_run(run.id)["lifecycle_stage"] == "deleted"  # still readable, as `roost runs show`
    assert run.id not in [r["run_id"] for r in roost.search_runs()]  # hidden from listings
    roost.restore_runs([run.id])
    assert roost.get_run(run.id)["metrics"] == {"m": 1.0} and run.id in [r["run_id"] for r in roost.search_runs()]
    roost.delete_run(run.id)
    roost.gc()  # the hard delete: only gc
    with pytest.raises(NotFoundError):
        roost.get_run(run.id)
    from sqlalchemy import text

    with default_store().engine.connect() as c:
        for t in ("metrics", "latest_metrics", "params", "tags"):
            assert c.execute(text(f"select count(*) from {t}")).scalar() == 0
    live = roost.start_run()
    with pytest.raises(RoostError, match="RUNNING"):  # as delete_runs: a running run needs force
        roost.delete_run(live.id)
    roost.delete_run(live.id, force=True)
    assert roost.get_run(live.id)["lifecycle_stage"] == "deleted"
    live.end()


def _make_package(run) -> None:
    import json

    d = run.artifact_dir / "model"
    d.mkdir(parents=True)
    (d / "signature.json").write_text(
        json.dumps({"task": "binary", "inputs": [{"name": "x", "dtype": "float32", "shape": [-1]}], "outputs": []})
    )
    (d / "roost-model.yaml").write_text("framework: torch\nmetrics: {roc_auc: 0.9}\n")
    (d / "model.onnx").write_bytes(b"fake")


def test_model_versions_aliases_and_history(ws):
    with roost.start_run() as r1:
        _make_package(r1)
    with roost.start_run() as r2:
        _make_package(r2)
    v1 = roost.register_model(r1.id, "churn", "model")
    v2 = roost.register_model(r2.id, "churn", "model")
    assert (v1.version, v2.version) == (1, 2)
    assert v1.signature["task"] == "binary" and v1.meta["metrics"]["roc_auc"] == 0.9
    roost.set_alias("churn", 1, "prod")
    assert roost.resolve_model("churn@prod").version == 1
    roost.set_alias("churn", 2, "prod")
    res = roost.resolve_model("churn@prod")
    assert res.version == 2 and res.run_id == r2.id and Path(res.local_path, "model.onnx").is_file()
    assert roost.resolve_model("churn/1").run_id == r1.id
    assert roost.resolve_model("churn").version == 2
    hist = modelreg.alias_history(default_store(), "churn")
    assert [(h["version"], h["previous_version"]) for h in hist] == [(1, None), (2, 1)]
    with pytest.raises(NotFoundError) as e:
        roost.resolve_model("chrn@prod")
    assert "churn" in e.value.hint
    with pytest.raises(NotFoundError):
        roost.resolve_model("churn@staging")
    with pytest.raises(NotFoundError):
        roost.set_alias("churn", 7, "prod")
    with pytest.raises(NotFoundError):
        roost.register_model(r1.id, "churn", "nothing-here")
    assert [m["name"] for m in roost.list_models()] == ["churn"]


def test_objects_table(ws):
    st = default_store()
    st.put_object("feature_view", "user_stats", {"ttl": 3600})
    st.put_object("feature_view", "user_stats", {"ttl": 60})
    assert st.get_object("feature_view", "user_stats") == {"ttl": 60}
    assert st.list_objects("feature_view") == {"user_stats": {"ttl": 60}}
    st.delete_object("feature_view", "user_stats")
    assert st.get_object("feature_view", "user_stats") is None


def test_artifact_paths_cannot_escape(ws, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("hi")
    with roost.start_run() as run:
        for bad in ("../x.txt", "/etc/passwd", "a/../../b", "..", "s3://bucket/x"):
            with pytest.raises(RoostError):
                run.log_artifact(f, bad)
        uri = run.log_artifact(f, "sub/dir/a.txt")
    assert uri.endswith("/artifacts/sub/dir/a.txt")
    assert Path(uri[len("file://") :]).read_text() == "hi"


def test_memory_artifact_root(tmp_path, monkeypatch):
    from roost import workspace

    monkeypatch.setenv("ROOST_ARTIFACTS", "memory://roost-test")
    w = roost.init(tmp_path / "m")
    monkeypatch.chdir(tmp_path / "m")
    workspace.use(w)
    f = tmp_path / "b.txt"
    f.write_text("mem")
    with roost.start_run() as run:
        uri = run.log_artifact(f)
    import fsspec

    with fsspec.open(uri, "r") as fh:
        assert fh.read() == "mem"
    from roost import artifacts

    assert [x["path"] for x in artifacts.list_files(run.artifact_uri)] == ["b.txt"]
    workspace.use(None)
    assert math.isfinite(1.0)


def test_store_and_artifact_backends_are_chosen_by_scheme(tmp_path):
    from roost import artifacts
    from roost.registry import engine as eng

    assert type(eng.backend_for("sqlite:///x.db")).__name__ == "SQLiteBackend"
    assert type(eng.backend_for("postgresql+psycopg://u@h/db")).__name__ == "PostgresBackend"
    with pytest.raises(RoostError, match="unsupported store URL") as err:
        eng.make_engine("mysql://root:pw@db/x")
    assert "pw" not in str(err.value)  # the message redacts the password
    fs, path = artifacts.filesystem("file://" + str(tmp_path))
    assert fs.exists(path) and path == str(tmp_path)


def test_ambiguous_run_id_prefix_lists_the_candidates(ws, cli):
    """`roost runs show d7` with two runs starting d7: the candidates, not "not found" (#37 item 4)."""
    ids = []
    for _ in range(17):  # 17 ids over 16 hex digits: two share their first character
        with roost.start_run() as r:
            ids.append(r.id)
    first = sorted({i[0] for i in ids}, key=lambda c: -sum(i[0] == c for i in ids))[0]
    same = sorted(i for i in ids if i[0] == first)
    assert len(same) >= 2
    with pytest.raises(NotFoundError) as e:
        roost.get_run(first)
    msg = str(e.value)
    assert f"run id prefix {first!r} matches {len(same)} runs" in msg and "give more characters" in msg
    assert all(i[:8] in msg for i in same[:5])
    code, out, err = cli("runs", "show", first)
    assert code == 2 and f"matches {len(same)} runs" in err and same[0][:8] in err
    code, out, err = cli("runs", "delete", first, "--yes")  # every place that resolves prefixes says the same
    assert code == 2 and f"matches {len(same)} runs" in err, err
    assert roost.get_run(same[0][:10])["run_id"] == same[0]  # a unique prefix still resolves
