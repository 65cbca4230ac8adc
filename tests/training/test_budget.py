"""`model: auto`'s time budget: the duration parser, the default, and the pure planner (costs + budget → plan)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from roost.errors import ConfigError
from roost.training.budget import (
    FULL_FOLDS_VALUE,
    REFIT_VALUE,
    SAFETY,
    Budget,
    candidate_values,
    default_budget,
    parse_budget,
    plan,
)


@pytest.mark.parametrize(
    "text, seconds",
    [("60s", 60.0), ("5m", 300.0), ("1.5h", 5400.0), ("90", 90.0), (45, 45.0), ("2 min", 120.0), ("none", None)],
)
def test_durations_parse_to_seconds(text, seconds) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "-5", "0", "-1m", "60x", "", True, float("inf"), 0])
def test_bad_durations_are_refused_naming_the_flag(bad) -> None:
    with pytest.raises(ConfigError) as err:
        parse_budget(bad, "--time-budget")
    assert "--time-budget" in err.value.message and "60s" in (err.value.hint or "")


def test_default_budget_is_a_minute_up_to_200k_cells_then_grows_with_the_table() -> None:
    assert default_budget(10_000, 20) == 60.0
    assert default_budget(300, 4) == 60.0
    assert default_budget(100_000, 20) == 600.0
    assert default_budget(10_000_000, 100) == 3600.0
    # a K-class label: K times that (unbudgeted, a 4-class 3,292-row table took 54 s and a 10-class one 199 s)
    assert default_budget(10_000, 20, classes=2) == 60.0
    assert default_budget(3_000, 13, classes=4) == 240.0
    assert default_budget(1_800, 64, classes=10) == 600.0
    assert default_budget(50_000, 20, classes=10) == 3000.0
    assert default_budget(100_000, 20, classes=10) == 3600.0  # at most an hour


def test_candidate_values_fall_with_the_gap_to_the_best() -> None:
    v = candidate_values("max", {"a": 0.90, "b": 0.89, "c": 0.85, "d": float("nan")})
    assert v["a"] == 1.0 and v["b"] == pytest.approx(0.5) and v["c"] == pytest.approx(1 / 6) and v["d"] == 0.1
    loss = candidate_values("min", {"a": 0.50, "b": 0.51})  # 2 % worse: half
    assert loss["a"] == 1.0 and loss["b"] == pytest.approx(0.5)


COSTS = {"lgbm": 1.0, "logreg": 0.5, "nn": 4.0}  # seconds per fold model with 5 folds
VALUES = {"lgbm": 1.0, "logreg": 0.3, "nn": 0.9}


def seconds_of(cv, k, refit, costs=COSTS, exports=None, folds=5, ratio=1.25) -> float:
    """The plan's seconds by hand: k fold models per candidate, each fitting (k-1)/k of the rows."""
    per_model = {c: costs[c] * ((k - 1) / k) / ((folds - 1) / folds) for c in cv}
    fits = sum(k * per_model[c] for c in cv)
    return fits * (1 + (ratio if refit else 0)) + sum((exports or {}).get(c, 0) * k for c in cv)


def test_everything_fits_a_generous_budget() -> None:
    p = plan(1000.0, COSTS, VALUES, 5)
    assert set(p.cv) == set(COSTS) and p.folds == 5 and p.refit and p.skipped == ()
    assert p.seconds == pytest.approx(seconds_of(COSTS, 5, True))


def test_the_refit_is_cut_first() -> None:
    full_cv = seconds_of(COSTS, 5, False)  # 27.5 s: all three, 5 folds, no refit
    p = plan((full_cv + 1) / SAFETY, COSTS, VALUES, 5)
    assert set(p.cv) == set(COSTS) and p.folds == 5 and not p.refit
    assert any("refit" in s for s in p.skipped) and not any("cross-validation" in s for s in p.skipped)


def test_folds_go_to_three_before_a_candidate_is_dropped() -> None:
    three = seconds_of(COSTS, 3, False)  # fewer rows per fold model and fewer models: cheaper
    assert three < seconds_of(COSTS, 5, False)
    p = plan((three + 0.1) / SAFETY, COSTS, VALUES, 5)
    assert set(p.cv) == set(COSTS) and p.folds == 3 and not p.refit
    assert any("folds 5 → 3" in s for s in p.skipped)


def test_a_refit_is_planned_only_with_every_candidate_cross_validated() -> None:
    # a candidate left out is weighed on the validation rows, and a blend holding it is never refitted: a plan
    # that paid for a refit beside it spent time on a step that cannot run (issue 36: digits under the default
    # budget planned wide_deep + lightgbm_deep + refit, left three children out, and got neither the refit nor
    # their cross-validation)
    costs, values = {"lgbm": 1.0, "nn": 20.0}, {"lgbm": 1.0, "nn": 0.2}
    left = seconds_of(["lgbm"], 5, True, costs) / SAFETY + 1
    p = plan(left, costs, values, 5)
    assert p.cv == ("lgbm",) and not p.refit and p.folds == 5
    assert p.seconds == pytest.approx(seconds_of(["lgbm"], 5, False, costs))
    assert f"cross-validation of nn (budget: {left:.0f} s left)" in p.skipped
    everything = plan(seconds_of(list(costs), 5, True, costs) / SAFETY + 1, costs, values, 5)
    assert set(everything.cv) == set(costs) and everything.refit


def test_finished_candidates_count_their_refit_and_export_but_not_their_folds() -> None:
    costs, values = {"b": 2.0}, {"a": 1.0, "b": 0.5}
    done = {"a": 10.0}  # a's cross-validation took 10 s: its refit costs 10 × 1.25 s more
    need = 5 * 2.0 * 2.25 + 10.0 * 1.25  # b's folds and refit, a's refit
    p = plan(need / SAFETY + 0.1, costs, values, 5, done=done, fewer_folds=False)
    assert p.cv == ("b",) and p.refit and p.seconds == pytest.approx(need)
    tighter = plan(need / SAFETY - 0.1, costs, values, 5, done=done, fewer_folds=False)
    assert tighter.cv == ("b",) and not tighter.refit and tighter.folds == 5  # b's folds before the refit
    assert plan(0.1, costs, values, 5, done=done).cv == ()


def test_nothing_fits_no_cross_validation() -> None:
    p = plan(0.5, COSTS, VALUES, 5)
    assert p.cv == () and not p.refit and p.seconds == 0.0
    assert len(p.skipped) == 1 and "cross-validation" in p.skipped[0] and "validation rows" in p.skipped[0]


def test_refit_false_never_plans_a_refit_nor_reports_it_skipped() -> None:
    p = plan(1000.0, COSTS, VALUES, 5, refit=False)
    assert not p.refit and p.skipped == ()


def test_export_seconds_count_per_member() -> None:
    exports = {"nn": 5.0}  # 5 fold models of nn: 25 s of export
    tight = seconds_of(COSTS, 5, True) + 10  # fits the fits, not nn's export
    p = plan(tight / SAFETY, COSTS, VALUES, 5, export_costs=exports)
    assert "nn" not in p.cv or p.folds == 3 or not p.refit
    assert p.seconds <= tight + 1e-9


def test_random_plans_fit_and_are_the_best_feasible_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        names = [f"c{j}" for j in range(int(rng.integers(1, 5)))]
        costs = {c: float(rng.uniform(0.1, 10)) for c in names}
        values = {c: float(rng.uniform(0.05, 1)) for c in names}
        left = float(rng.uniform(0.5, 150))
        p = plan(left, costs, values, 5)
        assert p.seconds <= left * SAFETY + 1e-9
        if p.cv:
            assert p.seconds == pytest.approx(seconds_of(p.cv, p.folds, p.refit, costs))
        # brute force over every subset, fold count and refit choice
        best = 0.0
        for size in range(1, len(names) + 1):
            for sub in itertools.combinations(names, size):
                for k, refit in itertools.product((5, 3), (True, False)):
                    if refit and len(sub) < len(names):
                        continue  # a refit needs every candidate cross-validated
                    if seconds_of(sub, k, refit, costs) <= left * SAFETY:
                        u = sum(values[c] for c in sub) + REFIT_VALUE * refit + FULL_FOLDS_VALUE * (k == 5)
                        best = max(best, u)
        got = sum(values[c] for c in p.cv) + REFIT_VALUE * p.refit + FULL_FOLDS_VALUE * (p.folds == 5) if p.cv else 0
        assert got == pytest.approx(best)
        more = plan(left * 2, costs, values, 5)  # more time never gives a worse plan
        more_u = sum(values[c] for c in more.cv) + REFIT_VALUE * more.refit + FULL_FOLDS_VALUE * (more.folds == 5)
        assert (more_u if more.cv else 0) >= got - 1e-12


def test_the_budget_clock() -> None:
    now = [100.0]
    b = Budget(60.0, clock=lambda: now[0])
    now[0] = 130.0
    assert b.left() == 30.0 and b.elapsed() == 30.0 and "30 s left" in b.note() and b.end() == 160.0
    assert Budget(None).left() == float("inf") and Budget(None).note() == "" and Budget(None).end() is None
    assert b.contention() == 1.0  # a synthetic clock: synthetic costs, no contention


def test_the_contention_is_the_wall_time_per_cpu_second(monkeypatch) -> None:
    import time

    from roost.training import budget as B

    wall, cpu = [1000.0], [50.0]
    monkeypatch.setattr(B.time, "monotonic", lambda: wall[0])
    monkeypatch.setattr(B.time, "process_time", lambda: cpu[0])
    b = Budget(60.0, clock=B.time.monotonic)  # the real clock (patched)
    assert b.contention() == 1.0  # nothing measured yet
    wall[0], cpu[0] = 1012.0, 52.0  # 12 s of wall time, 2 s of CPU: a sixth of a core
    assert b.contention() == pytest.approx(6.0)
    cpu[0] = 80.0  # more CPU than wall time (threads): never below 1
    assert b.contention() == 1.0
    b.measure_from_now()  # e.g. after the imports
    wall[0], cpu[0] = 1016.0, 82.0  # 4 s of wall time, 2 s of CPU since
    assert b.contention() == pytest.approx(2.0)
    wall[0] = 1012.0
    assert time.monotonic() == 1012.0


def test_the_default_budget_its_environment_override_and_the_config_key(monkeypatch) -> None:
    from roost.training.auto import budget_seconds
    from roost.training.config import TrainConfig

    cfg = TrainConfig.model_validate({"data": "x.parquet", "label": "y"})
    monkeypatch.delenv("ROOST_TIME_BUDGET", raising=False)
    assert cfg.time_budget == "auto" and budget_seconds(cfg, 10_000, 20) == 60.0
    assert budget_seconds(cfg, 3_000, 13, classes=4) == 240.0  # multiclass: K times
    monkeypatch.setenv("ROOST_TIME_BUDGET", "5m")
    assert budget_seconds(cfg, 10_000, 20) == 300.0
    monkeypatch.setenv("ROOST_TIME_BUDGET", "none")
    assert budget_seconds(cfg, 10_000, 20) is None
    set_ = TrainConfig.model_validate({"data": "x.parquet", "label": "y", "time_budget": "30s"})
    assert budget_seconds(set_, 10_000, 20) == 30.0  # the config wins over the environment
    monkeypatch.setenv("ROOST_TIME_BUDGET", "abc")
    with pytest.raises(ConfigError, match="ROOST_TIME_BUDGET"):
        budget_seconds(cfg, 10_000, 20)


def test_export_estimates_count_one_network_export_per_candidate_and_scale_with_the_contention(tmp_path) -> None:
    from types import SimpleNamespace

    from roost.training import budget as B

    child = SimpleNamespace(package_path=tmp_path / "none", seconds={})  # under a budget: no package of its own
    spec = SimpleNamespace(columns=[f"c{k}" for k in range(64)])  # digits: 64 input columns
    net, trees = SimpleNamespace(framework="torch", spec_=spec), SimpleNamespace(framework="lightgbm", spec_=spec)
    quiet = (B.export_cost(child, net, 5), B.export_cost(child, trees, 5), B.final_reserve({"torch", "lightgbm"}))
    one_net = B.EXPORT_PRIOR["torch"] + 64 * B.EXPORT_PER_COLUMN["torch"]  # a branch per input column
    assert quiet[0] * 5 == pytest.approx(one_net) and B.export_seconds("torch", 64) == pytest.approx(one_net)
    assert quiet[1] == pytest.approx(B.EXPORT_PRIOR["lightgbm"])  # each LightGBM member its own
    assert quiet[2] == pytest.approx(B.FINAL_PRIOR + B.EXPORT_WARMUP) and B.final_reserve({"lightgbm"}) < quiet[2]
    # a 2-core machine at load 12: single-threaded work gets a sixth of the wall time
    loaded = (B.export_cost(child, net, 5, 6.0), B.export_cost(child, trees, 5, 6.0))
    assert (*loaded, B.final_reserve({"torch", "lightgbm"}, 6.0)) == pytest.approx(tuple(6.0 * q for q in quiet))
    booster = SimpleNamespace(num_trees=lambda: 2000)  # 500 rounds × 4 classes
    big = SimpleNamespace(framework="lightgbm", spec_=spec, model_=SimpleNamespace(booster_=booster))
    assert B.export_cost(child, big, 5) == pytest.approx(B.EXPORT_PRIOR["lightgbm"] + 2000 * B.EXPORT_PER_TREE)
    (tmp_path / "pkg").mkdir()
    exported = SimpleNamespace(package_path=tmp_path / "pkg", seconds={"export": 4.0})  # measured: used as is
    assert B.export_cost(exported, net, 4) == 1.0 and B.export_cost(exported, trees, 4) == 4.0


def test_a_multiclass_run_gets_the_budget_of_its_class_count(ws, tmp_path, monkeypatch) -> None:
    import numpy as np
    import pandas as pd

    import roost

    monkeypatch.delenv("ROOST_TIME_BUDGET", raising=False)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300)})
    path = tmp_path / "t.parquet"
    for classes, expected in ((3, 180.0), (6, 360.0)):
        df.assign(y=[f"c{i % classes}" for i in range(300)]).to_parquet(path)
        cfg = {"data": str(path), "label": "y", "model": {"type": "auto", "params": {"candidates": ["logreg"]}}}
        assert roost.train(cfg, progress=False).budget_s == expected
