"""The Optuna callback: a real study; each trial's run equals the trial as Optuna reports it (params, values,
intermediate values, state), and the study's run tracks Optuna's own best value."""

from __future__ import annotations

import math
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")


def _objective(trial: Any) -> float:
    x = trial.suggest_float("x", -3, 3)
    k = trial.suggest_int("k", 1, 4)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    if kind == "b" and k == 4:
        raise ValueError("k=4 with b fails on purpose")
    for step in range(3):
        trial.report((x - 1) ** 2 + k + step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 1) ** 2 + k


def test_each_trial_is_a_child_run_equal_to_optunas_record(rec: Any) -> None:
    import roost
    from roost.autologging.optuna import OptunaCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cb = OptunaCallback(experiment="opt", metric_name="loss")
    study = optuna.create_study(study_name="s1", sampler=optuna.samplers.TPESampler(seed=3),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))  # fmt: skip
    study.optimize(_objective, n_trials=25, callbacks=[cb], catch=(ValueError,))
    cb.end()

    runs = roost.search_runs(experiment="opt", limit=None)
    parents = [r for r in runs if not r.get("parent_run_id")]
    children = {int(r["tags"]["optuna.trial"]): r for r in runs if r.get("parent_run_id")}
    assert len(parents) == 1 and parents[0]["name"] == "s1" and parents[0]["status"] == "FINISHED"
    assert sorted(children) == [t.number for t in study.trials]
    states = {t.state.name for t in study.trials}
    assert "COMPLETE" in states and ("FAIL" in states or "PRUNED" in states)
    for t in study.trials:
        r = children[t.number]
        assert r["parent_run_id"] == parents[0]["run_id"]
        assert r["tags"]["optuna.state"] == t.state.name
        assert r["status"] == {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}[t.state.name]
        assert set(r["params"]) == set(t.params)
        for k, v in t.params.items():
            got = r["params"][k]
            assert math.isclose(float(got), v, rel_tol=1e-12) if isinstance(v, float) else str(got) == str(v), k
        if t.values is not None:
            assert math.isclose(r["metrics"]["loss"], t.values[0], rel_tol=1e-12)
        else:
            assert "loss" not in r["metrics"]
        values, steps = rec.history(r["run_id"], "intermediate_value")
        want = sorted(t.intermediate_values.items())
        assert steps == [s for s, _ in want] and all(math.isclose(a, b) for a, (_, b) in zip(values, want, strict=True))
    # the study's run: best value so far at each trial number, as Optuna's own running minimum
    values, steps = rec.history(parents[0]["run_id"], "best_value")
    best, want = math.inf, []
    for t in study.trials:
        if t.state.name == "COMPLETE":
            best = min(best, t.values[0])
        if best < math.inf:
            want.append((t.number, best))
    assert list(zip(steps, values, strict=True)) == want
    assert parents[0]["tags"]["optuna.best_trial"] == str(study.best_trial.number)


def test_multi_objective_values_get_one_metric_each_and_logging_never_breaks_the_study(rec: Any) -> None:
    import roost
    from roost.autologging.optuna import OptunaCallback

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    cb = OptunaCallback(experiment="mo", metric_name=["err", "speed"])
    study.optimize(lambda t: (t.suggest_float("a", 0, 1), t.suggest_float("b", 0, 1)), n_trials=5, callbacks=[cb])
    cb.end()
    runs = {r["name"]: r for r in roost.search_runs(experiment="mo", limit=None)}
    for t in study.trials:
        m = runs[f"trial-{t.number}"]["metrics"]
        assert math.isclose(m["err"], t.values[0]) and math.isclose(m["speed"], t.values[1])

    bad = OptunaCallback(experiment="mo", metric_name=["only-one"])  # wrong count: a warning, the study goes on
    with pytest.warns(UserWarning, match="could not record Optuna trial"):
        study.optimize(lambda t: (t.suggest_float("a", 0, 1), 0.5), n_trials=2, callbacks=[bad])
    assert len(study.trials) == 7
