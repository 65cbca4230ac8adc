"""Retention (#21 item 3): soft delete / archive / restore by filter, model-version guard, gc of rows and artifacts.

Every test runs on SQLite and PostgreSQL (the `ws` fixture). Selections are checked against a brute-force
evaluation of the same criteria over every run's dict, never against the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import roost
from roost.errors import RoostError
from roost.registry import api, retention
from roost.registry.store import default_store

ROW_TABLES = ("metrics", "latest_metrics", "params", "tags")


def _seed(n: int = 12) -> list[str]:
    """n runs over two experiments with lr, a short metric history, an artifact; every third run FAILED."""
    ids = []
    for i in range(n):
        exp = "churn" if i % 2 == 0 else "ads"
        try:
            with roost.start_run(experiment=exp, name=f"r{i}", params={"lr": 0.001 * (i + 1)}, tags={"i": i}) as r:
                for step in range(3):
                    r.log_metric("auc", 0.5 + i / 100 + step / 1000, step=step)
                (r.artifact_dir / "model").mkdir()
                (r.artifact_dir / "model" / "weights.bin").write_bytes(b"w" * 100)
                ids.append(r.id)
                if i % 3 == 0:
                    raise ValueError("diverged")
        except ValueError:
            pass
    return ids


def _all_runs() -> list[dict[str, Any]]:
    return roost.search_runs(limit=None, stages=retention.STAGES)


def _rows(run_id: str) -> dict[str, int]:
    from sqlalchemy import text

    with default_store().engine.connect() as c:
        out = {
            t: int(c.execute(text(f"SELECT count(*) FROM {t} WHERE run_id = :r"), {"r": run_id}).scalar() or 0)
            for t in ROW_TABLES
        }
        out["runs"] = int(c.execute(text("SELECT count(*) FROM runs WHERE id = :r"), {"r": run_id}).scalar() or 0)
    return out


def _artifact_root(run: dict[str, Any]) -> Path:
    from roost import artifacts

    return artifacts.local_path(run["artifact_uri"])


def test_delete_by_filter_hides_runs_everywhere_and_restore_brings_them_back(ws):
    from roost.registry.paging import Count
    from roost.ui import data

    ids = _seed()
    every = {r["run_id"]: r for r in _all_runs()}
    expected = {
        rid for rid, r in every.items() if r["params"]["lr"] < 0.0075 and r["status"] == "FAILED"
    }  # brute force over the dicts
    assert len(expected) == 3
    res = roost.delete_runs(filter="params.lr < 0.0075 and status = 'FAILED'")
    assert set(res.run_ids) == expected
    listed = {r["run_id"] for r in roost.search_runs(limit=None)}
    assert listed == set(ids) - expected
    assert sum(e["runs"] for e in roost.list_experiments()) == len(ids) - 3
    assert data.count_runs() == Count(len(ids) - 3)  # exact: a small store is counted, not estimated
    assert data.count_runs("status = 'FAILED'") == Count(
        sum(1 for rid, r in every.items() if r["status"] == "FAILED" and rid not in expected)
    )
    page = data.runs_page(per_page=100)
    assert page.total == len(ids) - 3 and {r["run_id"] for r in page.runs} == listed
    gone = sorted(expected)[0]
    assert roost.get_run(gone)["lifecycle_stage"] == "deleted"  # still readable by id, like MLflow
    assert _rows(gone)["metrics"] == 3  # soft: nothing removed
    assert {r["run_id"] for r in roost.search_runs(stages=("deleted",), limit=None)} == expected
    back = roost.restore_runs([gone[:10]])
    assert back.run_ids == [gone]
    assert gone in {r["run_id"] for r in roost.search_runs(limit=None)}
    assert roost.get_run(gone)["lifecycle_stage"] == "active"


def test_experiment_and_age_narrow_the_selection_and_dry_run_changes_nothing(ws):
    ids = _seed(6)
    res = roost.delete_runs(experiment="ads", dry_run=True)
    every = _all_runs()
    assert set(res.run_ids) == {r["run_id"] for r in every if r["experiment"] == "ads"}
    assert all(r["lifecycle_stage"] == "active" for r in every)
    assert roost.delete_runs(experiment="ads", older_than="1d").run_ids == []  # all started just now
    assert roost.delete_runs(experiment="ads", older_than="0s").run_ids != []
    assert len(roost.search_runs(limit=None)) == len(ids) - 3
    with pytest.raises(RoostError, match="nothing selects"):
        roost.delete_runs()
    with pytest.raises(RoostError, match="not a duration"):
        roost.delete_runs(experiment="ads", older_than="30 days")
    with pytest.raises(RoostError, match="did you mean"):
        roost.delete_runs(experiment="chrun")


def test_parse_age_units():
    from datetime import timedelta

    assert retention.parse_age("30d") == timedelta(days=30)
    assert retention.parse_age("12h") == timedelta(hours=12)
    assert retention.parse_age("90m") == timedelta(minutes=90)
    assert retention.parse_age("2w") == timedelta(days=14)
    assert retention.parse_age("7") == timedelta(days=7)
    assert retention.parse_age("0d") == timedelta(0)


def test_archive_hides_from_default_listings_and_all_shows_them(ws, cli):
    ids = _seed(4)
    code, out, err = cli("runs", "archive", ids[0], ids[1][:8], "--json")
    assert code == 0, err
    assert set(json.loads(out)["run_ids"]) == {ids[0], ids[1]}
    code, out, _ = cli("runs", "list", "--json")
    assert {r["run_id"] for r in json.loads(out)} == set(ids[2:])
    code, out, _ = cli("runs", "list", "--all", "--json")
    shown = {r["run_id"]: r["lifecycle_stage"] for r in json.loads(out)}
    assert shown == {ids[0]: "archived", ids[1]: "archived", ids[2]: "active", ids[3]: "active"}
    # archived runs keep everything; restore lists them again
    assert _rows(ids[0])["metrics"] == 3 and _artifact_root(roost.get_run(ids[0])).is_dir()
    assert cli("runs", "restore", ids[0])[0] == 0
    assert ids[0] in {r["run_id"] for r in roost.search_runs()}
    roost.gc()  # gc never touches archived runs
    assert _rows(ids[1])["runs"] == 1


def test_cli_delete_by_filter_needs_yes_and_dry_run_lists(ws, cli):
    ids = _seed(6)
    failed = {r["run_id"] for r in _all_runs() if r["status"] == "FAILED"}
    code, _, err = cli("runs", "delete", "--filter", "status = 'FAILED'")
    assert code == 2 and "--yes" in err  # no TTY here: never deletes unconfirmed
    assert len(roost.search_runs(limit=None)) == len(ids)
    code, out, err = cli("runs", "delete", "--filter", "status = 'FAILED'", "--dry-run")
    assert code == 0 and "would be deleted" in out and all(f in out for f in failed)
    assert len(roost.search_runs(limit=None)) == len(ids)
    code, out, err = cli("runs", "delete", "--filter", "status = 'FAILED'", "--yes")
    assert code == 0, err
    assert {r["run_id"] for r in roost.search_runs(limit=None)} == set(ids) - failed
    code, out, _ = cli("runs", "list", "--deleted", "--json")
    assert {r["run_id"] for r in json.loads(out)} == failed


def _register(run_id: str, name: str) -> None:
    run = roost.get_run(run_id)
    d = _artifact_root(run) / "model"
    (d / "model.onnx").write_bytes(b"onnx")
    (d / "roost-model.yaml").write_text("framework: torch\n")
    roost.register_model(run_id, name, "model")


def test_deleting_a_model_versions_run_is_refused_naming_it_unless_forced(ws):
    ids = _seed(4)
    _register(ids[1], "churn")
    with pytest.raises(RoostError) as e:
        roost.delete_runs(filter="params.lr > 0.0015")
    assert "churn/1" in e.value.message and ids[1][:8] in e.value.message and "--force" in (e.value.hint or "")
    assert len(roost.search_runs(limit=None)) == 4  # nothing changed
    assert roost.archive_runs([ids[1]]).run_ids == [ids[1]]  # archiving keeps everything: allowed
    res = roost.delete_runs(filter="params.lr > 0.0015", force=True)
    assert set(res.run_ids) == set(ids[1:]) and res.model_versions == ["churn/1"]
    gc = roost.gc()
    assert set(gc.run_ids) == set(ids[1:])
    # the model version stays loadable: gc kept the files under its source, removed the rest of the run's files
    v = roost.resolve_model("churn/1")
    assert v.run_id is None
    assert (Path(v.local_path) / "model.onnx").read_bytes() == b"onnx"
    root = Path(v.local_path).parent
    assert sorted(p.name for p in root.iterdir()) == ["model"]


def test_running_runs_are_left_alone_unless_forced(ws):
    _seed(2)
    live = roost.start_run(experiment="churn", name="live", params={"lr": 0.5})
    try:
        res = roost.delete_runs(filter="params.lr = 0.5")
        assert res.run_ids == [] and res.skipped_running == [live.id]
        assert roost.delete_runs(filter="params.lr = 0.5", force=True).run_ids == [live.id]
    finally:
        live.end()


def test_gc_removes_rows_and_artifacts_of_deleted_runs_only(ws):
    ids = _seed(8)
    runs = {r["run_id"]: r for r in _all_runs()}
    doomed = [ids[0], ids[3], ids[5]]
    kept = [i for i in ids if i not in doomed]
    before = {i: _rows(i) for i in kept}
    roost.delete_runs(doomed)
    assert roost.gc(older_than="1d").run_ids == []  # deleted just now
    dry = roost.gc(dry_run=True)
    assert set(dry.run_ids) == set(doomed) and all(_rows(i)["runs"] == 1 for i in doomed)
    rep = roost.gc(batch_size=2)
    assert set(rep.run_ids) == set(doomed) and rep.artifacts_removed == 3
    for i in doomed:
        assert _rows(i) == dict.fromkeys((*ROW_TABLES, "runs"), 0)
        assert not _artifact_root(runs[i]).exists() and not _artifact_root(runs[i]).parent.exists()
    for i in kept:
        assert _rows(i) == before[i]
        assert (_artifact_root(runs[i]) / "model" / "weights.bin").stat().st_size == 100
    with pytest.raises(RoostError):
        roost.restore_runs([doomed[0]])
    assert roost.gc().run_ids == []


def test_gc_keeps_artifacts_of_imported_runs(ws):
    ids = _seed(2)
    api.tag_run(ids[0], {retention.IMPORTED_TAG: "mlflow:sqlite:///elsewhere.db"})
    root = _artifact_root(roost.get_run(ids[0]))
    roost.delete_runs([ids[0]])
    rep = roost.gc()
    assert rep.run_ids == [ids[0]] and rep.artifacts_removed == 0 and "imported" in rep.artifacts_kept[0]
    assert root.is_dir() and _rows(ids[0])["runs"] == 0


def test_gc_interrupted_midway_leaves_a_consistent_store_and_a_rerun_finishes(ws, monkeypatch):
    """A crash inside artifact removal: rows never outlive unnoticed (the batch is marked purging), rerun finishes."""
    ids = _seed(8)
    runs = {r["run_id"]: r for r in _all_runs()}
    doomed = ids[:6]
    roost.delete_runs(doomed)
    real = retention.remove_artifacts
    calls = {"n": 0}

    def crash_on_third(run_id: str, uri: str, keep: list[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process dies here
        real(run_id, uri, keep)

    monkeypatch.setattr(retention, "remove_artifacts", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        roost.gc(batch_size=2)
    monkeypatch.setattr(retention, "remove_artifacts", real)
    stages = {r["run_id"]: r["lifecycle_stage"] for r in _all_runs()}
    gone = [i for i in doomed if i not in stages]
    assert len(gone) == 2  # the first batch finished
    purging = [i for i in doomed if stages.get(i) == "purging"]
    assert len(purging) == 2  # the batch in flight is marked: no longer restorable, picked up first next time
    for i in doomed:  # invariant: a run not marked purging still has all its artifacts
        if stages.get(i) == "deleted":
            assert (_artifact_root(runs[i]) / "model" / "weights.bin").exists()
    with pytest.raises(RoostError, match="purging"):
        roost.restore_runs([purging[0]])
    rep = roost.gc(batch_size=2)
    assert rep.resumed == 2 and set(rep.run_ids) == set(doomed) - set(gone)
    for i in doomed:
        assert _rows(i)["runs"] == 0 and not _artifact_root(runs[i]).exists()
    assert {r["run_id"] for r in _all_runs()} == set(ids[6:])
