"""`roost tune CONFIG`: trials as child runs, best-so-far curve, grid, parallel workers, Ctrl-C, real training."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import roost
from helpers import ctrl_c_reaches_children
from roost.tune.search_space import point_key

OBJECTIVES = '''
import time
from roost.tune import Pruned

def quad(ctx):
    p = ctx.params
    for step in range(1, 4):
        if ctx.report((p["x"] - 1) ** 2 + 1.0 / step, step):
            raise Pruned()
    return (p["x"] - 1) ** 2 + (0.5 if p.get("kind") == "b" else 0.0)

def slow(ctx):
    # trials 0-3 finish; later ones outlast the test's wait for them, so Ctrl-C lands while trials run however
    # loaded the machine (0.4 s each let 200 trials finish before a starved test process sent it: exit 0)
    time.sleep(0.4 if ctx.number < 4 else 30)
    return ctx.params["x"]

def rendezvous(ctx):
    """Wait (up to 60 s) until trials from two different worker processes have started: proves parallelism
    without depending on who is scheduled first."""
    import os, pathlib
    d = pathlib.Path(__file__).parent / "pids"
    d.mkdir(exist_ok=True)
    (d / str(os.getpid())).touch()
    deadline = time.time() + 60
    while len(list(d.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    return (ctx.params["x"] - 1) ** 2
'''


@pytest.fixture
def objectives(ws, monkeypatch):
    (ws.root / "tobj.py").write_text(OBJECTIVES)
    monkeypatch.syspath_prepend(str(ws.root))  # spawned workers inherit sys.path
    return ws


def _config(ws, name: str, search: dict, **tune) -> str:
    path = ws.root / name
    path.write_text(yaml.safe_dump({"search": search, "tune": {"objective": "tobj:quad", **tune}}))
    return str(path)


def _children(parent: str) -> list[dict]:
    return [r for r in roost.search_runs(experiment="tune", limit=None) if r["parent_run_id"] == parent]


def test_trials_are_child_runs_and_the_parent_keeps_the_best(objectives, cli) -> None:
    cfg = _config(objectives, "t.yaml", {"x": {"uniform": [-2, 3]}}, sampler="random", prune="median", seed=3)
    code, out, err = cli("tune", cfg, "--trials", "9", "--json")
    assert code == 0, err
    res = json.loads(out)
    kids = _children(res["parent_run_id"])
    assert len(kids) == 9 and {r["tags"]["roost.tune.study"] for r in kids} == {res["study_id"]}
    finished = [r for r in kids if r["tags"]["roost.tune.state"] == "COMPLETE"]
    best = min(finished, key=lambda r: r["metrics"]["value"])
    assert res["best"]["value"] == best["metrics"]["value"] and res["best"]["attrs"]["run_id"] == best["run_id"]
    assert best["params"]["x"] == res["best"]["params"]["x"]
    parent = roost.get_run(res["parent_run_id"])
    assert parent["status"] == "FINISHED" and parent["tags"]["roost.tune.best_run_id"] == best["run_id"]
    curve = [h["value"] for h in roost.registry.api.metric_history(parent["run_id"], "best_so_far")]
    assert len(curve) == len(finished) and curve == sorted(curve, reverse=True)
    assert curve[-1] == best["metrics"]["value"]
    assert sum(r["tags"]["roost.tune.state"] == "PRUNED" for r in kids) == 9 - len(finished)
    code, out, _ = cli("tune", "show", res["study_id"], "--json")
    assert code == 0 and len(json.loads(out)["trials"]) == 9


def test_conditional_grid_through_the_cli_covers_the_product_once(objectives, cli) -> None:
    search = {"kind": ["a", "b"], "x": {"int": [0, 2], "when": {"kind": "a"}}, "z": [True, False]}
    cfg = _config(objectives, "g.yaml", search)
    code, out, err = cli("tune", cfg, "--trials", "50", "--sampler", "grid", "--json")
    assert code == 0, err
    trials = roost.tune.Engine().study(json.loads(out)["study_id"])["trials"]
    expected = [{"kind": "a", "x": x, "z": z} for x, z in itertools.product([0, 1, 2], [True, False])]
    expected += [{"kind": "b", "z": z} for z in (True, False)]
    assert sorted(point_key(t["params"]) for t in trials) == sorted(map(point_key, expected))


def test_parallel_workers_share_one_study(objectives, cli) -> None:
    cfg = _config(objectives, "p.yaml", {"x": {"uniform": [-2, 3]}}, sampler="tpe", objective="tobj:rendezvous")
    code, out, err = cli("tune", cfg, "--trials", "8", "--parallel", "2", "--json")
    assert code == 0, err
    st = roost.tune.Engine().study(json.loads(out)["study_id"])
    assert [t["number"] for t in st["trials"]] == list(range(8))
    assert st["counts"]["COMPLETE"] + st["counts"]["PRUNED"] == 8
    assert len({t["client_id"] for t in st["trials"]}) == 2


def test_bad_config_errors_name_the_field(objectives, cli) -> None:
    # a function objective has no prescribed space (a training config without search: has, tests/tune/test_prescribed)
    (objectives.root / "none.yaml").write_text("tune: {objective: 'tobj:quad'}\n")
    code, _, err = cli("tune", str(objectives.root / "none.yaml"), "--trials", "2")
    assert code == 2 and "search" in err
    code, _, err = cli("tune", _config(objectives, "s.yaml", {"x": {"uniform": [0, 1]}}), "--sampler", "tpee")
    assert code == 2 and "sampler" in err and "tpe" in err
    code, _, err = cli("tune", _config(objectives, "c.yaml", {"x": {"uniform": [0, 1]}}), "--sampler", "grid")
    assert code == 2 and "x:" in err and "grid" in err


def test_ctrl_c_stops_and_keeps_finished_trials(objectives) -> None:
    cfg = _config(objectives, "slow.yaml", {"x": {"uniform": [0, 1]}}, objective="tobj:slow", sampler="random")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update(ROOST_WORKSPACE=str(objectives.root), PYTHONPATH=str(objectives.root))
    with ctrl_c_reaches_children():
        p = subprocess.Popen(
            [sys.executable, "-m", "roost.cli.main", "tune", cfg, "--trials", "200", "--parallel", "2", "--json"],
            cwd=objectives.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    try:
        eng = roost.tune.Engine()
        deadline = time.time() + 120
        while time.time() < deadline:
            studies = eng.list_studies()
            if studies and eng.study(studies[0]["id"])["counts"]["COMPLETE"] >= 4:
                break
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:  # a missed Ctrl-C must not leave 200 trials running in their own session
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, err
    res = json.loads(out)
    assert res["interrupted"] is True
    st = eng.study(res["study_id"])
    assert st["counts"]["COMPLETE"] >= 4 and st["counts"]["RUNNING"] == 0
    assert st["counts"]["COMPLETE"] + st["counts"]["FAIL"] == len(st["trials"]) < 200
    assert all(t["reason"] == "interrupted" for t in st["trials"] if t["state"] == "FAIL")
    assert roost.get_run(res["parent_run_id"])["status"] == "KILLED"
    assert res["best"]["value"] == min(t["value"] for t in st["trials"] if t["state"] == "COMPLETE")


def test_tuning_a_real_training_config_registers_the_best(ws, cli) -> None:
    cfg = {
        "data": "sklearn:breast_cancer",
        "label": "target",
        "model": "logreg",
        "trainer": {"epochs": 2},
        "register": "bc-tuned",
        "search": {"lr": {"loguniform": ["1e-3", 0.1]}, "model.params.weight_decay": {"choice": [0.0, 1e-4]}},
    }
    (ws.root / "train.yaml").write_text(yaml.safe_dump(cfg))
    code, out, err = cli("tune", str(ws.root / "train.yaml"), "--trials", "2", "--prune", "median", "--json")
    assert code == 0, err
    res = json.loads(out)
    kids = [r for r in roost.search_runs(limit=None) if r["parent_run_id"] == res["parent_run_id"]]
    assert len(kids) == 2
    for r in kids:  # the trial's params reached the trainer as overrides
        t = res["best"] if r["run_id"] == res["best"]["attrs"]["run_id"] else None
        assert r["status"] == "FINISHED" and "val_roc_auc" in r["metrics"]
        if t is not None:
            assert r["params"]["trainer.lr"] == pytest.approx(t["params"]["lr"])
            assert r["metrics"]["val_roc_auc"] == t["value"]
    # a small table: the registered model is the blend of the cross-validated trials, kept on the tuning run
    assert res["registered"] == "bc-tuned/1" and res["final"]["weights"]
    assert roost.resolve_model("bc-tuned/1").run_id == res["parent_run_id"]
    st = roost.tune.Engine().study(res["study_id"])
    # the pruner hears the out-of-fold metric after each of the first 4 of 5 folds
    assert st["direction"] == "maximize" and all(len(t["intermediate"]) == 4 for t in st["trials"]), st["trials"]
