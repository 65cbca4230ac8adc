"""`roost train`, `roost tune` and the notebook kernel's attach_run as clients of a real `roost server`
(conftest.live_server): everything lands on the server's store, and answers match the same work done locally."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

import roost
from helpers import mixed_frame
from roost.registry import api, backend
from roost.registry.rest import RestStore
from roost.registry.sqlstore import sql_store

OBJECTIVE = """
def quad(ctx):
    for step in range(1, 3):
        ctx.report((ctx.params["x"] - 1) ** 2 + 1.0 / step, step)
    return (ctx.params["x"] - 1) ** 2
"""


@pytest.fixture
def remote(as_client, live_server, monkeypatch: pytest.MonkeyPatch):
    """This process as a client of the server, signed in with an admin token (made here when the fixture has none)."""
    from roost.registry import accounts

    if live_server.token is None:
        store = sql_store(live_server.store_url)
        accounts.create_user(store, "admin", None, admin=True)
        live_server.token = accounts.create_token(store, "admin").token
    monkeypatch.setenv("ROOST_TOKEN", live_server.token)
    backend.reset()
    assert isinstance(backend.default_store(), RestStore)
    return as_client


def test_train_registers_and_loads_through_the_server(remote, live_server, ws, cli, tmp_path: Path) -> None:
    data = tmp_path / "mixed.parquet"
    mixed_frame(300).to_parquet(data)
    cfg = tmp_path / "train.yaml"
    body = {"data": str(data), "label": "clicked", "model": "logreg", "features": {"exclude": ["kind", "score"]}}
    cfg.write_text(yaml.safe_dump({**body, "trainer": {"epochs": 2}}))
    code, out, err = cli("train", str(cfg), "--set", "register=clicks", "--json")
    assert code == 0, err
    res = json.loads(out)
    direct = sql_store(live_server.store_url)
    run = direct.get_run(res["run_id"])  # on the server's own store
    assert run["status"] == "FINISHED" and run["metrics"]["test_roc_auc"] == res["metrics"]["test_roc_auc"]
    on_disk = Path(run["artifact_uri"].removeprefix("file://"))
    assert str(on_disk).startswith(str(live_server.root / "artifacts"))
    client_run = roost.get_run(res["run_id"])  # the client sees proxy URIs, and lists the same files through them
    assert client_run["artifact_uri"].startswith(f"roost+{live_server.url}/api/v1/artifacts/")
    from roost import artifacts

    files = {f["path"] for f in artifacts.list_files(client_run["artifact_uri"])}
    assert files == {str(p.relative_to(on_disk)) for p in on_disk.rglob("*") if p.is_file()} and files
    api.set_alias("clicks", res["version"], "prod")
    mv = api.resolve_model("clicks@prod")
    assert mv.version == res["version"] == 1 and mv.local_path is not None
    pkg_on_server = next(p.parent for p in on_disk.rglob("roost-model.yaml"))
    frame = mixed_frame(50, seed=7).drop(columns=["clicked"])
    got = roost.load_model("clicks@prod").predict(frame)
    want = roost.load_model(pkg_on_server).predict(frame)  # the package as the server stored it, read directly
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _tune(cli, cfg: Path) -> dict:
    code, out, err = cli("tune", "run", str(cfg), "--trials", "3", "--sampler", "random", "--seed", "11", "--json")
    assert code == 0, err
    return json.loads(out)


def test_tune_runs_its_study_on_the_server(remote, live_server, ws, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (ws.root / "robj.py").write_text(OBJECTIVE)
    monkeypatch.syspath_prepend(str(ws.root))
    cfg = ws.root / "t.yaml"
    cfg.write_text(yaml.safe_dump({"search": {"x": {"uniform": [-2, 3]}}, "tune": {"objective": "robj:quad"}}))
    res = _tune(cli, cfg)
    from roost.tune.engine import Engine

    on_server = Engine(sql_store(live_server.store_url)).study(res["study_id"])  # the server's own store
    assert on_server["counts"]["COMPLETE"] == 3 and on_server["attrs"]["experiment"] == "tune"
    values = [t["value"] for t in on_server["trials"]]
    assert res["best"]["value"] == min(values) == on_server["best_trial"]["value"]
    best_run = sql_store(live_server.store_url).get_run(res["best"]["attrs"]["run_id"])
    assert best_run["parent_run_id"] == res["parent_run_id"] and best_run["metrics"]["value"] == min(values)
    assert len(on_server["trials"][0]["intermediate"]) == 2  # report() went through the server too
    with pytest.raises(roost.RoostError, match="not found"):
        Engine(sql_store(ws.store_url)).study(res["study_id"])  # nothing in the client's own workspace database
    code, out, err = cli("tune", "show", res["study_id"][:6], "--json")  # by a prefix, through the server
    assert code == 0, err
    assert [t["value"] for t in json.loads(out)["trials"]] == values
    remote(False)  # the same job run directly on the workspace's database: same seed, same points, same best
    local = _tune(cli, cfg)
    local_trials = Engine().study(local["study_id"])["trials"]
    assert [t["params"] for t in local_trials] == [t["params"] for t in on_server["trials"]]
    assert local["best"]["params"] == res["best"]["params"] and local["best"]["value"] == res["best"]["value"]


def test_tune_service_needs_edit_on_the_study_experiment(remote, live_server, ws) -> None:
    from roost.registry import accounts, grants
    from roost.tune.remote import RemoteEngine

    admin = RemoteEngine(live_server.url, live_server.token)
    roost.start_run("shared").end()  # the experiment exists (the admin manages it)
    sid = admin.create_study({"x": {"uniform": [0, 1]}}, max_trials=2, attrs={"experiment": "shared"})["id"]
    store = sql_store(live_server.store_url)
    accounts.create_user(store, "bob", None)
    bob = RemoteEngine(live_server.url, accounts.create_token(store, "bob").token)
    assert bob.study(sid)["id"] == sid  # the default role (read) reads it
    with pytest.raises(roost.RoostError, match="needs the edit role on experiment 'shared'"):
        bob.ask(sid, client_id="b")
    with pytest.raises(roost.RoostError, match="needs the edit role"):
        bob.create_study({"x": [1, 2]}, attrs={"experiment": "shared"})
    grants.grant(store, "bob", "experiment", "shared", "edit")
    t = bob.ask(sid, client_id="b")["trial"]
    assert bob.tell(sid, t["number"], 0.5)["state"] == "COMPLETE"
    held = bob.ask(sid, client_id="b2")["trial"]["number"]  # a stopped job's trial is failed, not left leased
    assert bob.abandon(sid, ["b2"], "stopped") == 1
    assert [(x["state"], x["reason"]) for x in admin.study(sid)["trials"] if x["number"] == held] == [
        ("FAIL", "stopped")
    ]
    r = httpx.post(f"{live_server.url}/api/v1/tune/studies/{sid}/ask", json={"client_id": "x"})
    assert r.status_code == 401  # no token
    from roost.registry import audit_log

    want = sorted([("bob", 403), ("bob", 200), ("bob", 200), (None, 401)], key=str)
    deadline = time.monotonic() + 10  # the audit row is written just after the answer is sent
    while True:
        rows = [(r.actor, r.status, r.action, r.resource) for r in audit_log.query(store, limit=1000)]
        asks = [(actor, status) for actor, status, action, res in rows if f"{action} {res}".endswith(f"{sid}/ask")]
        if sorted(asks, key=str) == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(asks, key=str) == want, rows


KERNEL = """
import roost
from roost.notebook.kernel import attach
run = attach()
roost.log_metrics({"cell_loss": 0.5}, step=1)
roost.log_metric("cell_loss", 0.25, step=2)
roost.set_tag("from", "kernel")
"""


def test_attach_run_logs_through_the_server(remote, live_server, ws, tmp_path: Path) -> None:
    """A kernel process (ROOST_RUN_ID, as `roost notebook run` starts it) logs into our run through the server."""
    import os
    import subprocess
    import sys

    with roost.start_run("nb") as run:
        env = {**os.environ, "ROOST_RUN_ID": run.id, "PYTHONPATH": str(Path(roost.__file__).parents[1])}
        done = subprocess.run([sys.executable, "-c", KERNEL], env=env, cwd=ws.root, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    direct = sql_store(live_server.store_url)
    got = direct.get_run(run.id)
    assert got["status"] == "FINISHED" and got["tags"]["from"] == "kernel" and got["metrics"]["cell_loss"] == 0.25
    assert [(p["step"], p["value"]) for p in direct.metric_history(run.id, "cell_loss")] == [(1, 0.5), (2, 0.25)]
