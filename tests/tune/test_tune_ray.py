"""`roost tune --backend ray`: trials run as tasks on a real local Ray head and land in the same repository."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import yaml

import rayhead
import roost
from helpers import child_pythonpath, ctrl_c_reaches_children, finish_or_explain, python_m_with_stacks, stacks_now

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'roost[ray]')"
)

OBJECTIVE = '''
import os, socket

def quad(ctx):
    ctx.run.set_tag("test.pid", str(os.getpid()))
    ctx.run.set_tag("test.ws", os.environ.get("ROOST_WORKSPACE", ""))
    p = ctx.params
    ctx.report((p["x"] - 1) ** 2 + 1.0, 1)
    return (p["x"] - 1) ** 2 + (0.5 if p["kind"] == "b" else 0.0)

def slow(ctx):
    """Trials 0-2 finish; later ones run until Ctrl-C cancels them (600 s is only a hang guard), so the test
    interrupts while tasks are surely running, however fast or slow the machine."""
    import time
    time.sleep(1.0 if ctx.number < 3 else 600)
    return ctx.params["x"]
'''
SEARCH = {"x": {"uniform": [-2, 3]}, "kind": ["a", "b"]}
N = 6


@pytest.fixture(scope="module")
def ray_head():
    """A real `ray start --head` on free loopback ports (2 CPUs); its process group is stopped afterwards."""
    with rayhead.ray_head("rr-") as address:
        _skip_unless_a_driver_connects(address, rayhead.head_env())
        yield address


def _skip_unless_a_driver_connects(address: str, env: dict[str, str]) -> None:
    """Skip (with Ray's own words) when a plain `ray.init(address=...)` cannot reach the head on this machine.

    A safety net: on 2026-12-04 the Ray release pip gave required a token by default and drivers failed with
    "Failed to connect to Ray cluster" (the code before that session failed the same way); the head and the driver
    now run with RAY_AUTH_MODE=disabled, as a loopback test cluster may."""
    probe = "import sys, ray; ray.init(address=sys.argv[1], log_to_driver=False); ray.shutdown()"
    try:
        r = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, env=env, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.skip(f"a Ray driver could not connect to the local head at {address} within 180 s on this machine")
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"a Ray driver cannot connect to the local head on this machine: {tail[0][:300]}")


@pytest.fixture
def objectives(ws, monkeypatch):
    (ws.root / "rayobj.py").write_text(OBJECTIVE)
    monkeypatch.syspath_prepend(str(ws.root))
    return ws


def _tune(cli, ws, name: str, *extra: str) -> dict:
    path = ws.root / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {"search": SEARCH, "tune": {"objective": "rayobj:quad", "sampler": "random", "seed": 7, "experiment": name}}
        )
    )
    code, out, err = cli("tune", str(path), "--trials", str(N), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def _children(experiment: str, parent: str) -> list[dict]:
    return sorted(
        (r for r in roost.search_runs(experiment=experiment, limit=None) if r["parent_run_id"] == parent),
        key=lambda r: int(r["tags"]["roost.tune.trial"]),
    )


def _shape(run: dict) -> tuple:
    """What must match between backends: param, metric and tag names (where a trial ran aside), status."""
    tags = {k for k in run["tags"] if not k.startswith(("roost.tune.host", "roost.tune.pid", "roost.tune.ray_"))}
    return run["status"], sorted(run["params"]), sorted(run["metrics"]), sorted(tags - {"roost.tune.backend"})


@pytest.mark.slow
@pytest.mark.services
@needs_ray
def test_trials_run_as_ray_tasks_with_the_local_records(objectives, cli, ray_head) -> None:
    import ray

    res = _tune(cli, objectives, "onray", "--backend", "ray", "--ray-address", ray_head)
    assert not ray.is_initialized()  # the CLI disconnected after the job
    kids = _children("onray", res["parent_run_id"])
    assert [int(r["tags"]["roost.tune.trial"]) for r in kids] == list(range(N))
    # every trial ran in a Ray worker process: not this one, on the head's node, the objective saw the workspace
    pids = {r["tags"]["test.pid"] for r in kids}
    assert str(os.getpid()) not in pids and all(r["tags"]["roost.tune.pid"] == r["tags"]["test.pid"] for r in kids)
    assert 1 <= len(pids) <= 2  # the head has 2 CPUs: at most 2 worker processes
    assert all(r["tags"]["test.ws"] == str(objectives.root) for r in kids)
    nodes = {r["tags"]["roost.tune.ray_node"] for r in kids}
    assert len(nodes) == 1 and len(nodes.pop()) == 56  # a Ray node id (hex)
    parent = roost.get_run(res["parent_run_id"])
    assert parent["status"] == "FINISHED" and parent["tags"]["roost.tune.backend"] == "ray"
    assert parent["params"]["tune.parallel"] == 2  # the cluster's CPUs
    # the best trial is the argmin of the recorded values, on the study, the result and the parent run
    st = roost.tune.Engine().study(res["study_id"])
    assert st["counts"]["COMPLETE"] == N and len({t["client_id"] for t in st["trials"]}) <= 2
    best = min(kids, key=lambda r: r["metrics"]["value"])
    assert res["best"]["attrs"]["run_id"] == best["run_id"] == parent["tags"]["roost.tune.best_run_id"]
    assert res["best"]["value"] == best["metrics"]["value"] == parent["metrics"]["best_value"]
    for r in kids:  # each run's params and value are its trial's
        t = st["trials"][int(r["tags"]["roost.tune.trial"])]
        assert r["params"]["x"] == pytest.approx(t["params"]["x"]) and r["params"]["kind"] == t["params"]["kind"]
        bonus = 0.5 if t["params"]["kind"] == "b" else 0.0
        assert r["metrics"]["value"] == t["value"]
        assert list(t["intermediate"].values()) == [pytest.approx(t["value"] - bonus + 1.0)]  # reported via Engine
    # same shape as a local run of the same config
    local = _tune(cli, objectives, "local")
    lkids = _children("local", local["parent_run_id"])
    assert [_shape(r) for r in lkids] == [_shape(r) for r in kids]
    lparent = roost.get_run(local["parent_run_id"])
    assert _shape(lparent) == _shape(parent) and lparent["tags"]["roost.tune.backend"] == "local"
    assert all(r["tags"]["test.pid"] == str(os.getpid()) for r in lkids)  # local, parallel 1: this process


@pytest.mark.slow
@pytest.mark.services
@needs_ray
def test_ctrl_c_cancels_running_tasks_and_keeps_finished_trials(objectives, ray_head) -> None:
    path = objectives.root / "slow.yaml"
    path.write_text(
        yaml.safe_dump(
            {"search": {"x": {"uniform": [0, 1]}}, "tune": {"objective": "rayobj:slow", "sampler": "random"}}
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "RAY_"))}
    env.update(ROOST_WORKSPACE=str(objectives.root), PYTHONPATH=child_pythonpath(objectives.root))
    with ctrl_c_reaches_children():
        p = subprocess.Popen(
            [
                *python_m_with_stacks("roost.cli.main"),  # a miss shows where the CLI is stuck
                "tune",
                str(path),
                "--trials",
                "200",
                "--json",
                "--backend",
                "ray",
                "--ray-address",
                ray_head,
            ],
            cwd=objectives.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    try:
        eng = roost.tune.Engine()
        started, counts = time.time(), {}
        while time.time() < started + 180 and p.poll() is None:
            studies = eng.list_studies()
            counts = eng.study(studies[0]["id"])["counts"] if studies else {}
            if counts and counts["COMPLETE"] >= 3 and counts["RUNNING"] >= 1:  # a running trial that will not end
                break
            time.sleep(0.2)
        print(f"Ctrl-C after {time.time() - started:.1f} s at counts {counts}; the CLI's stacks then:", file=sys.stderr)
        stacks_now(p)  # where the Ctrl-C lands (in the CLI's stderr)
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C; Ray's workers are not in this group
        out, err = finish_or_explain(p, 120, "roost tune --backend ray after Ctrl-C")
    finally:
        if p.poll() is None:  # a missed Ctrl-C must not leave 200 trials running in their own session
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, err
    res = json.loads(out)
    st = eng.study(res["study_id"])
    assert st["counts"]["COMPLETE"] >= 3 and st["counts"]["RUNNING"] == 0 and len(st["trials"]) < 200
    failed = [t for t in st["trials"] if t["state"] == "FAIL"]
    assert failed and all(t["reason"] == "interrupted" for t in failed)  # the tasks that were running
    assert roost.get_run(res["parent_run_id"])["status"] == "KILLED"
    runs = {r["run_id"]: r for r in roost.search_runs(experiment="tune", limit=None)}
    assert all(runs[t["attrs"]["run_id"]]["status"] == "KILLED" for t in failed if t["attrs"].get("run_id"))
    # the interrupted trials' own runs (a task forced after the grace never ends its run itself): none left RUNNING
    trial_runs = {
        r["tags"].get("roost.tune.trial"): r["status"] for r in runs.values() if r["name"].startswith("trial-")
    }
    assert "RUNNING" not in trial_runs.values(), trial_runs
    assert all(trial_runs.get(str(t["number"]), "KILLED") == "KILLED" for t in failed), trial_runs


@needs_ray
def test_a_missing_ray_head_is_a_user_error(objectives, cli) -> None:
    path = objectives.root / "t.yaml"
    path.write_text(yaml.safe_dump({"search": SEARCH, "tune": {"objective": "rayobj:quad"}}))
    code, _, err = cli(
        "tune", str(path), "--trials", "2", "--backend", "ray", "--ray-address", f"127.0.0.1:{rayhead.free_port()}"
    )
    assert code == 2 and "Ray" in err
    code, _, err = cli("tune", str(path), "--trials", "2", "--backend", "dask")
    assert code == 2 and "--backend" in err


def test_without_ray_the_error_says_how_to_install(objectives, cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when ray is not installed
    path = objectives.root / "t.yaml"
    path.write_text(yaml.safe_dump({"search": SEARCH, "tune": {"objective": "rayobj:quad"}}))
    code, _, err = cli("tune", str(path), "--trials", "2", "--backend", "ray")
    assert code == 2 and "pip install 'roost[ray]'" in err
    assert roost.search_runs(limit=None) == []  # refused before a tuning run was started


class _RayStandIn:
    """The calls RayBackend._cancel makes, recorded; `wait` is interrupted as by a second Ctrl-C."""

    def __init__(self) -> None:
        self.cancels: list[tuple[str, bool]] = []

    def cancel(self, ref: str, force: bool = False) -> None:
        self.cancels.append((ref, force))

    def wait(self, refs: list[str], num_returns: int, timeout: float) -> tuple[list[str], list[str]]:
        raise KeyboardInterrupt


def test_a_second_ctrl_c_during_the_cancel_grace_forces_every_task() -> None:
    from roost.tune.ray_backend import RayBackend

    backend = RayBackend.__new__(RayBackend)  # no cluster: only the cancel protocol is under test
    backend.ray = ray = _RayStandIn()
    with pytest.raises(KeyboardInterrupt):
        backend._cancel(["t1", "t2"])
    # soft cancel first; the second Ctrl-C must not leave the tasks running on the cluster (before: no force at all)
    assert ray.cancels == [("t1", False), ("t2", False), ("t1", True), ("t2", True)]


def test_cancelled_trials_runs_are_ended_killed_and_no_other_run_is_touched(ws) -> None:
    from roost.registry.api import start_run
    from roost.tune.ray_backend import end_cancelled_runs

    parent, other_parent = start_run(experiment="tune", name="p"), start_run(experiment="tune", name="q")

    def trial(study: str, n: int, under: str = parent.id):
        return start_run(
            experiment="tune",
            name=f"trial-{n}",
            tags={"roost.tune.study": study, "roost.tune.trial": str(n)},
            parent_run_id=under,
        ).id

    cancelled, kept = trial("S", 3), trial("S", 4)  # trial 4 was not among the cancelled tasks
    same_number_other_study, other_job = trial("T", 3), trial("S", 3, other_parent.id)
    finished = trial("S", 5)
    from roost.registry.backend import default_store

    default_store().log_batch(finished, finish=("FINISHED", datetime.now(UTC)))
    assert end_cancelled_runs(parent.id, "S", [3, 5]) == 1
    status = {r["run_id"]: r["status"] for r in roost.search_runs(limit=None)}
    assert status[cancelled] == "KILLED" and status[finished] == "FINISHED"
    assert {status[kept], status[same_number_other_study], status[other_job], status[parent.id]} == {"RUNNING"}
    assert end_cancelled_runs(parent.id, "S", []) == 0
