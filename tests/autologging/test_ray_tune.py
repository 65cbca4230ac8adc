"""The Ray Tune logger on a real local Ray: each trial's run equals Tune's own record of it (config, every
reported result by training_iteration, failure) — read back from Tune's ResultGrid, the independent reference."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.tune")

SCRIPT = r"""
import json, os, sys
import ray
from ray import tune
from roost.autologging.ray_tune import RoostLoggerCallback

def train(config):
    if config["lr"] == 0.3 and config["opt"]["name"] == "adam":
        raise ValueError("this one fails on purpose")
    for i in range(3):
        tune.report({"score": config["lr"] * (i + 1), "nested": {"loss": 1.0 / (i + 1)}, "flag": True})

ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
space = {"lr": tune.grid_search([0.1, 0.3]), "opt": {"name": tune.grid_search(["sgd", "adam"])}}
tuner = tune.Tuner(train, param_space=space, run_config=tune.RunConfig(
    name="rt", storage_path=sys.argv[1], callbacks=[RoostLoggerCallback(experiment="rt", name="sweep")],
    verbose=0))
grid = tuner.fit()
out = []
for r in grid:
    df = r.metrics_dataframe
    cols = ["training_iteration", "score", "nested/loss"]
    rows = df[cols].values.tolist() if df is not None and set(cols) <= set(df.columns) else []
    out.append({"config": r.config, "failed": r.error is not None, "rows": rows})
print("RESULTS " + json.dumps(out))
ray.shutdown()
"""


@pytest.mark.slow
def test_each_trial_is_a_child_run_equal_to_tunes_results(ws: Any, tmp_path: Path) -> None:
    import roost
    from roost.registry.api import metric_history

    env = {**os.environ, "ROOST_WORKSPACE": str(ws.root), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ray")], capture_output=True, text=True,
                       env=env, cwd=ws.root, timeout=600)  # fmt: skip
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULTS ")]
    if not lines and "Failed to connect" in p.stderr:
        pytest.skip(f"Ray could not start here: {p.stderr[-300:]}")
    assert lines, (p.returncode, p.stderr[-3000:])
    results = json.loads(lines[0][len("RESULTS ") :])
    runs = roost.search_runs(experiment="rt", limit=None)
    parents = [r for r in runs if not r.get("parent_run_id")]
    children = [r for r in runs if r.get("parent_run_id")]
    assert len(parents) == 1 and parents[0]["name"] == "sweep" and parents[0]["status"] == "FINISHED"
    assert len(children) == len(results) == 4
    by_config = {(r["params"]["lr"], r["params"]["opt/name"]): r for r in children}
    for res in results:
        run = by_config[(res["config"]["lr"], res["config"]["opt"]["name"])]
        assert run["status"] == ("FAILED" if res["failed"] else "FINISHED")
        got = [(p["step"], p["value"]) for p in metric_history(run["run_id"], "score")]
        assert got == [(int(it), s) for it, s, _ in res["rows"]]
        loss = [p["value"] for p in metric_history(run["run_id"], "nested/loss")]
        assert all(math.isclose(a, b) for a, (_, _, b) in zip(loss, res["rows"], strict=True))
        assert "flag" not in run["metrics"] and "time_total_s" not in run["metrics"]
    assert sum(r["failed"] for r in results) == 1
