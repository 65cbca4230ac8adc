"""`roost lineage` on hostile or damaged input: torn request logs, requests of unregistered models, deleted runs,
malformed and huge references. Each ends in an answer or a RoostError that says what is missing, no traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roost import lineage
from roost.errors import NotFoundError, RoostError
from roost.registry import api


def _log(ws, model: str, version: str, rid: str, name: str = "a.parquet") -> Path:
    """A request-log file as roost.serve.reqlog lays them out: <dir>/<model>/<day>/<file>.parquet."""
    d = Path(ws.state_dir) / lineage.REQUEST_LOG_SUBDIR / model / "2026-01-02"
    d.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "_ts": pa.array([datetime(2026, 1, 2, tzinfo=UTC)]),
            "_request_id": [rid],
            "_model": [model],
            "_version": [version],
            "_protocol": ["v2"],
            "_latency_ms": [1.5],
            "x": [1.0],
        }
    )
    pq.write_table(table, d / name)
    return d / name


def _model_from_run(name: str = "m") -> str:
    with api.start_run(params={"data.source": "train.parquet", "data.fingerprint": "abc"}) as run:
        (run.artifact_dir / "model").mkdir()
        (run.artifact_dir / "model" / "signature.json").write_text("{}")
        (run.artifact_dir / "model" / "roost-model.yaml").write_text(f"run_id: {run.id}\n")
    api.register_model(run.id, name)
    api.set_alias(name, 1, "prod")
    return run.id


def test_a_torn_request_log_does_not_hide_the_others(ws, caplog: pytest.LogCaptureFixture) -> None:
    """One unreadable Parquet file (a disk that filled up, a copy cut short) made every lookup raise DuckDB's
    InvalidInputException; the other files are still searched and the bad one is named in a warning."""
    _model_from_run()
    _log(ws, "m", "1", "88-1")
    torn = _log(ws, "m", "1", "99-9", name="torn.parquet")
    torn.write_bytes(torn.read_bytes()[:40])
    lin = lineage.lineage("88-1")
    assert lin["kind"] == "request" and lin["model_version"]["version"] == 1
    assert any("torn.parquet" in r.getMessage() for r in caplog.records)
    with pytest.raises(NotFoundError, match="not a request id"):
        lineage.lineage("12-34")


def test_request_of_a_model_served_from_a_path(ws, cli) -> None:
    """A request served from a package folder (no registry entry) is still traced to the request itself."""
    _log(ws, "pathmodel", "1", "77-1")
    lin = lineage.lineage("77-1")
    assert lin["kind"] == "request" and lin["request"]["model"] == "pathmodel"
    assert lin["model_version"] is None and lin["run"] is None
    assert "not in the model registry" in lin["note"]
    code, out, _err = cli("lineage", "77-1")
    assert code == 0 and "request 77-1" in out and "not in the model registry" in out
    assert "registered from a folder" not in out


def test_model_whose_run_was_deleted_says_so(ws, cli) -> None:
    """After `roost runs delete --force` and `roost gc` the version keeps its package but loses its run: lineage
    said 'the version was registered from a folder', which is false."""
    rid = _model_from_run()
    api.delete_runs([rid], force=True)
    api.gc()
    lin = lineage.lineage("m@prod")
    assert lin["run"] is None and lin["deleted_run_id"] == rid
    code, out, _err = cli("lineage", "m@prod")
    assert code == 0 and f"run {rid} was deleted" in out
    assert "registered from a folder" not in out


def test_soft_deleted_run_is_marked(ws, cli) -> None:
    rid = _model_from_run()
    api.delete_runs([rid], force=True)
    lin = lineage.lineage("m/1")
    assert lin["run"]["run_id"] == rid and lin["run"]["lifecycle_stage"] == "deleted"
    code, out, _err = cli("lineage", "m/1")
    assert code == 0 and "(deleted; `roost runs restore" in out


def test_plain_model_name_is_its_latest_version(ws) -> None:
    _model_from_run()
    api.register_model(api.search_runs()[0]["run_id"], "m")
    lin = lineage.lineage("m")
    assert lin["kind"] == "model_version" and lin["model_version"]["version"] == 2


@pytest.mark.parametrize("ref", ["m/99999999999999999999", "m/9223372036854775808"])
def test_huge_version_is_not_found(ws, cli, ref: str) -> None:
    _model_from_run()
    with pytest.raises(NotFoundError, match="no version"):
        lineage.lineage(ref)
    code, _out, err = cli("lineage", ref)
    assert code == 2 and "no version" in err


@pytest.mark.parametrize("target", ["m@@prod", "m@prod@x", "\x00", "%", "_", "a" * 10_000])
def test_malformed_targets_are_roost_errors(ws, target: str) -> None:
    _model_from_run()
    with pytest.raises(RoostError):
        lineage.lineage(target)
