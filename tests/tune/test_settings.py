"""`roost.tune.tune(...)` keywords and `run_tuning(..., TuneSettings(...))` reach the tuning run the same way."""

from __future__ import annotations

import roost
from roost.tune import TuneSettings, run_tuning, tune


def _score(ctx) -> float:
    return -((ctx.params["x"] - 0.3) ** 2)


def _trials(res) -> list[float]:
    return [t["params"]["x"] for t in sorted(res.trials, key=lambda t: t["number"])]


def test_settings_reach_the_parent_run_and_the_study(ws) -> None:
    space = {"x": {"uniform": [0.0, 1.0]}}
    knobs = {
        "sampler": "random",
        "prune": "median",
        "direction": "maximize",
        "metric": "score",
        "experiment": "knobs",
        "name": "study-a",
        "seed": 7,
        "tags": {"team": "search"},
        "start": [{"x": 0.25}],
    }
    res = run_tuning(_score, space, 5, TuneSettings(**knobs))
    parent = roost.get_run(res.parent_run_id)
    assert parent["params"]["tune.sampler"] == "random" and parent["params"]["tune.prune"] == "median"
    assert parent["params"]["tune.direction"] == "maximize" and parent["params"]["tune.metric"] == "score"
    assert parent["params"]["tune.n_trials"] == 5 and parent["params"]["tune.parallel"] == 1
    assert parent["name"] == "study-a" and parent["tags"]["team"] == "search"
    assert parent["tags"]["roost.kind"] == "tune" and parent["tags"]["roost.tune.backend"] == "local"
    assert _trials(res)[0] == 0.25  # the start point is tried first
    assert res.best_value == max(-((x - 0.3) ** 2) for x in _trials(res))  # maximize
    in_exp = roost.registry.api.search_runs(experiment="knobs")
    kids = [r for r in in_exp if r.get("parent_run_id") == res.parent_run_id]
    assert len(in_exp) == 6 and len(kids) == 5  # the tuning run and its trials, all in the named experiment
    assert all("score" in r["metrics"] for r in kids)  # each trial logs the named metric
    # the keyword form with the same seed draws the same trials
    again = tune(_score, space, 5, **knobs)
    assert _trials(again) == _trials(res)
    assert roost.get_run(again.parent_run_id)["params"] == parent["params"]


def test_finish_runs_on_the_result_before_the_run_ends(ws) -> None:
    seen = []
    res = run_tuning(
        _score, {"x": [0.1, 0.3]}, 2, TuneSettings(direction="maximize"), finish=lambda r: seen.append(r.best_params)
    )
    assert seen == [{"x": 0.3}] and res.best_params == {"x": 0.3}
    assert roost.get_run(res.parent_run_id)["status"] == "FINISHED"
