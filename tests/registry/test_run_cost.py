"""Creating a run is cheap: few write transactions, no git process outside a checkout, a correct run dict."""

import subprocess

import pytest
from sqlalchemy import event

import roost
from roost.registry import run as run_module
from roost.registry.store import default_store


def _count_writes(engine):
    """A list that grows by one per write transaction begun on `engine` (BEGIN IMMEDIATE on SQLite)."""
    writes = []

    def on_begin(conn):
        if conn.info.get("roost_write"):
            writes.append(1)

    event.listen(engine, "begin", on_begin)
    return writes, lambda: event.remove(engine, "begin", on_begin)


def test_a_run_with_params_tags_and_a_metric_costs_two_write_transactions(ws):
    st = default_store()
    with roost.start_run(experiment="e", params={"a": 1}, tags={"t": "x"}) as r0:  # creates the experiment
        r0.log_metric("m", 1.0)
    writes, stop = _count_writes(st.engine)
    try:
        with roost.start_run(experiment="e", params={"lr": 0.1, "depth": 3, "model": "gbm"}, tags={"t": "y"}) as r:
            r.log_metric("auc", 0.9)
    finally:
        stop()
    assert len(writes) == 2, "one transaction to create the run, one to write its last points and status"
    got = roost.get_run(r.id)
    assert got["status"] == "FINISHED" and got["end_time"] is not None
    assert got["params"] == {"lr": 0.1, "depth": 3, "model": "gbm"} and got["tags"] == {"t": "y"}
    assert got["metrics"] == {"auc": 0.9}


def test_no_git_process_outside_a_git_checkout(ws, monkeypatch):
    calls = []

    def fake_run(*a, **kw):
        calls.append(a)
        raise AssertionError("git must not be started outside a checkout")

    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    if any((d / ".git").exists() for d in (ws.root, *ws.root.parents)):
        pytest.skip("the temporary workspace is inside a git checkout")
    with roost.start_run() as r:
        pass
    assert calls == [] and roost.get_run(r.id)["git_commit"] is None


def test_the_live_run_dict_is_what_the_store_reads_back(ws):
    params = {"lr": 0.1, "n": 3, "flag": True, "name": "x", "none": None}
    run = roost.start_run(experiment="dicts", name="n1", params=params, tags={"k": 5})
    try:
        stored = default_store().get_run(run.id)
        live = dict(run.info)
        assert live.keys() == stored.keys()
        assert live == stored
    finally:
        run.end()


def test_a_failed_one_transaction_end_still_sets_the_status(ws, monkeypatch):
    """When the final write fails (e.g. a bad point), end() falls back: the status is set and the error raised."""
    st = default_store()
    run = roost.start_run(name="fallback", store=st)
    run.log_metric("x", 1.0)
    real = st.log_batch

    def failing_metrics(run_id, params=None, tags=None, metrics=(), **kw):
        if list(metrics):
            raise RuntimeError("disk full")
        return real(run_id, params=params, tags=tags, metrics=metrics, **kw)

    monkeypatch.setattr(st, "log_batch", failing_metrics)
    with pytest.raises(RuntimeError, match="disk full"):
        run.end("FINISHED")
    assert roost.get_run(run.id)["status"] == "FINISHED"


def test_git_lookup_walks_up_to_the_checkout(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert run_module._in_git_checkout(tmp_path / "repo" / "a" / "b")
