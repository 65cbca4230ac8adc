"""Hostile input to runs: metric steps/values, param and tag keys and values, logging to ended or deleted runs.

A bad point must be refused when it is logged, with a RoostError naming it; it must never sit in the buffer and
make every later flush fail (which lost all of the run's points), and nothing of it may reach the store.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from sqlalchemy import text

from roost.errors import NotFoundError, RoostError
from roost.registry import api
from roost.registry.lifecycle import Lifecycle, runs
from roost.registry.store import default_store


def _rows(sql: str, rid: str | None = None) -> list[tuple]:
    """Rows read with plain SQL on the store's database (SQLite or PostgreSQL), not through roost's API."""
    with default_store().engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql), {"rid": rid})]


@pytest.mark.parametrize("step", [2**63, 2**31, -(2**31) - 1, 1.5, "3", float("nan"), None])
def test_bad_step_is_refused_and_other_points_survive(ws, step: object) -> None:
    with api.start_run() as run:
        run.log_metric("loss", 0.5, step=0)
        if step is None:
            with pytest.raises(RoostError, match="step"):
                run.log_metrics({"loss": 0.4}, step=object())  # type: ignore[arg-type]
        else:
            with pytest.raises(RoostError, match="step"):
                run.log_metric("loss", 0.4, step=step)  # type: ignore[arg-type]
        run.log_metric("loss", 0.3, step=2)
    assert _rows("select value, step from metrics where run_id=:rid order by step", run.id) == [(0.5, 0), (0.3, 2)]
    assert api.get_run(run.id)["status"] == "FINISHED"


def test_integral_steps_of_other_types_are_stored_as_ints(ws) -> None:
    with api.start_run() as run:
        run.log_metric("a", 1.0, step=np.int64(7))  # type: ignore[arg-type]
        run.log_metric("b", 1.0, step=2.0)  # type: ignore[arg-type]
        run.log_metric("c", 1.0, step=2**31 - 1)
        run.log_metric("d", 1.0, step=-(2**31))
    got = dict(_rows("select key, step from metrics where run_id=:rid", run.id))
    assert got == {"a": 7, "b": 2, "c": 2**31 - 1, "d": -(2**31)}


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), "x", [1.0], 1j], ids=["huge", "-huge", "str", "list", "complex"]
)
def test_bad_metric_value_is_a_roost_error(ws, value: object) -> None:
    with api.start_run() as run, pytest.raises(RoostError, match="metric 'm'"):
        run.log_metric("m", value)  # type: ignore[arg-type]
    assert _rows("select count(*) from metrics where run_id=:rid", run.id) == [(0,)]


def test_infinite_metric_values_are_kept(ws) -> None:
    with api.start_run() as run:
        run.log_metrics({"hi": math.inf, "lo": -math.inf, "big": 1e308})
    got = dict(_rows("select key, value from latest_metrics where run_id=:rid", run.id))
    assert got == {"hi": math.inf, "lo": -math.inf, "big": 1e308}


@pytest.mark.parametrize("key", ["", "   ", "a\x00b", "k" * 257])
@pytest.mark.parametrize("kind", ["metric", "param", "tag"])
def test_bad_key_is_refused(ws, kind: str, key: str) -> None:
    with api.start_run() as run:
        with pytest.raises(RoostError, match=f"{kind} name"):
            {"metric": run.log_metric, "param": run.log_param, "tag": run.set_tag}[kind](key, 1)
        run.log_metric("ok", 1.0)
    assert _rows("select count(*) from metrics where run_id=:rid", run.id) == [(1,)]
    assert _rows("select count(*) from params where run_id=:rid", run.id) == [(0,)]
    assert _rows("select count(*) from tags where run_id=:rid", run.id) == [(0,)]


def test_bad_key_at_start_creates_no_run(ws) -> None:
    with pytest.raises(RoostError, match="param name"):
        api.start_run(params={"": 1})
    with pytest.raises(RoostError, match="tag name"):
        api.start_run(tags={"a\x00": "x"})
    assert _rows("select count(*) from runs") == [(0,)]


def test_nul_in_values_is_refused(ws) -> None:
    with api.start_run() as run:
        with pytest.raises(RoostError, match="param 'p'.*NUL"):
            run.log_param("p", "a\x00b")
        with pytest.raises(RoostError, match="tag 't'.*NUL"):
            run.set_tag("t", "a\x00b")
    with pytest.raises(RoostError, match="tag 't'.*NUL"):
        api.tag_run(run.id, {"t": "\x00"})
    assert _rows("select count(*) from params where run_id=:rid", run.id) == [(0,)]
    assert _rows("select count(*) from tags where run_id=:rid", run.id) == [(0,)]


def test_numpy_params_keep_their_type(ws) -> None:
    with api.start_run() as run:
        run.log_params({"f": np.float32(1.5), "i": np.int64(7), "b": np.bool_(True), "d": np.float64(0.25)})
    got = {k: (t, n) for k, t, n in _rows("select key, type, num from params where run_id=:rid", run.id)}
    assert got == {"f": ("float", 1.5), "i": ("int", 7.0), "b": ("bool", 1.0), "d": ("float", 0.25)}
    assert api.get_run(run.id)["params"] == {"f": 1.5, "i": 7, "b": True, "d": 0.25}
    assert [r["run_id"] for r in api.search_runs("params.i > 6 and params.f < 2")] == [run.id]


def test_param_too_large_for_a_number_is_a_roost_error(ws) -> None:
    with api.start_run() as run, pytest.raises(RoostError, match="param 'big'"):
        run.log_param("big", 10**400)
    assert _rows("select count(*) from params where run_id=:rid", run.id) == [(0,)]


def test_odd_param_types_are_stored_as_text(ws) -> None:
    import datetime

    with api.start_run() as run:
        run.log_params({"l": [1, 2], "d": {"a": 1}, "t": datetime.date(2020, 1, 2), "n": None, "bytes": b"\x00a"})
    assert api.get_run(run.id)["params"] == {
        "l": "[1, 2]",
        "d": "{'a': 1}",
        "t": "2020-01-02",
        "n": "None",
        "bytes": "b'\\x00a'",
    }


def test_end_twice_keeps_the_first_status(ws) -> None:
    run = api.start_run()
    run.end("FAILED")
    run.end("FINISHED")
    run.end()
    assert api.get_run(run.id)["status"] == "FAILED"
    with pytest.raises(RoostError, match="unknown run status"):
        run.end("DONE")
    with pytest.raises(RoostError, match="has ended"):
        run.log_metric("m", 1.0)


def test_logging_to_a_deleted_run_is_not_found(
    ws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose row was deleted under it: each write says so (no IntegrityError), the background flusher does
    not retry the lost points forever, and ending the run says it is gone."""
    monkeypatch.setattr(runs, "tick", lambda: None)  # the background thread stays out; ticks are called below
    run = api.start_run()
    run.log_metric("m", 1.0)
    api.default_store().delete_run(run.id)  # the rows go (as gc removes them), the run object lives on
    with pytest.raises(NotFoundError, match="deleted"):
        run.log_param("p", 1)
    with pytest.raises(NotFoundError, match="deleted"):
        run.set_tag("t", "v")
    with pytest.raises(NotFoundError, match="deleted"):
        run.flush()
    assert not run.flush_pending()  # the points cannot be written anywhere: not kept for endless retries
    run.log_metric("m", 2.0)
    with caplog.at_level(logging.WARNING, logger="roost.registry.lifecycle"):
        Lifecycle.tick(runs)
        Lifecycle.tick(runs)
    assert len([r for r in caplog.records if run.id in r.getMessage()]) == 1
    with pytest.raises(NotFoundError):
        run.end()
    assert _rows("select count(*) from runs") == [(0,)]
    assert _rows("select count(*) from metrics") == [(0,)]


@pytest.mark.parametrize("where", ["", "."])
def test_a_file_logged_at_the_root_gets_its_own_uri(ws, tmp_path, where: str) -> None:
    """artifact_path '' or '.' put the file at the run's root but returned the root's URI (and a remote root
    refused it as 'a folder')."""
    f = tmp_path / "notes.txt"
    f.write_text("hi")
    with api.start_run() as run:
        uri = run.log_artifact(f, where)
    assert uri.endswith("/artifacts/notes.txt")
    assert run.local_artifact("notes.txt").read_text() == "hi"


def test_local_artifact_refuses_a_symlink_leading_out_of_the_run(ws, tmp_path) -> None:
    """run.local_artifact / roost.local_artifact followed a symlink in the run's folder to any file on the machine
    (lineage then read features.json from there); log_artifact already refused such destinations."""
    from roost import lineage

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (outside / "features.json").write_text('{"views": [{"name": "stolen"}]}')
    with api.start_run() as run:
        (run.artifact_dir / "link").symlink_to(outside, target_is_directory=True)
        (run.artifact_dir / "features.json").symlink_to(outside / "features.json")
        (run.artifact_dir / "inside.txt").write_text("ok")
        (run.artifact_dir / "alias.txt").symlink_to(run.artifact_dir / "inside.txt")
        with pytest.raises(RoostError, match="escapes"):
            run.local_artifact("link/secret.txt")
    with pytest.raises(RoostError, match="escapes"):
        api.local_artifact(run.id, "link/secret.txt")
    assert api.local_artifact(run.id, "alias.txt").read_text() == "ok"  # a link that stays inside is fine
    assert run.local_artifact("inside.txt").read_text() == "ok"
    assert lineage.run_lineage(run.id)["feature_views"] == []
