"""`roost tune` must not lose to the defaults it starts from (issue 36): a tuned trial replaces its type's start
point only when it wins on the same folds by more than the selection noise (tune.cv.beats_noise).

The rule is checked against scipy's paired t-test on synthetic fold scores, and end to end on a small table whose
label is pure noise, where every trial's edge over the defaults is luck.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from roost.tune.cv import NOISE_K, beats_noise, best_of_each_type


def test_beats_noise_is_a_one_sided_paired_t_test_at_k() -> None:
    rng = np.random.default_rng(0)
    wins = losses = 0
    for _ in range(400):
        inc = rng.normal(0.80, 0.03, 5)
        chal = inc + rng.normal(rng.uniform(-0.01, 0.02), rng.uniform(0.001, 0.02), 5)
        t = float(ttest_rel(chal, inc).statistic)  # the reference: scipy's paired t statistic
        assert beats_noise(chal, inc, "maximize") == (t > NOISE_K)
        assert beats_noise(-chal, -inc, "minimize") == (t > NOISE_K)  # a loss: lower wins, same rule
        wins, losses = wins + (t > NOISE_K), losses + (t <= NOISE_K)
    assert wins > 50 and losses > 50  # both outcomes were exercised


def test_beats_noise_on_plain_cases() -> None:
    inc = np.array([0.80, 0.82, 0.78, 0.81, 0.79])
    assert beats_noise(inc + 0.01, inc, "maximize")  # better on every fold by the same margin (no spread)
    assert not beats_noise(inc, inc, "maximize")  # a tie keeps the defaults
    noisy = inc + np.array([0.03, -0.02, 0.02, -0.01, 0.0])  # +0.004 on average, swinging both ways
    assert not beats_noise(noisy, inc, "maximize")
    assert not beats_noise(inc - 0.01, inc, "maximize")
    assert not beats_noise(np.array([np.nan, 0.9, 0.9, 0.9, 0.9]), inc, "maximize")


def test_best_of_each_type_keeps_the_start_point_unless_beaten_beyond_noise() -> None:
    def trial(n: int, kind: str, value: float) -> dict:
        return {"number": n, "value": value, "params": {"model.type": kind}}

    base = np.array([0.80, 0.82, 0.78, 0.81, 0.79])
    folds = {  # per-fold scores stand in for the predictions
        0: base,  # logreg's defaults
        1: base + 0.01,  # lightgbm's table defaults
        2: base - 0.02,  # lightgbm's library defaults
        3: base + np.array([0.04, -0.02, 0.03, -0.01, 0.0]),  # logreg tuned: best value, luck
        4: base + 0.01 + np.array([0.012, 0.009, 0.011, 0.010, 0.013]),  # lightgbm tuned: wins on every fold
    }
    trials = [trial(n, k, float(folds[n].mean())) for n, k in enumerate(["logreg", "lightgbm", "lightgbm"] * 1)]
    trials += [trial(3, "logreg", float(folds[3].mean())), trial(4, "lightgbm", float(folds[4].mean()))]
    preds = [folds[t["number"]] for t in trials]
    kept, _ = best_of_each_type(trials, preds, "maximize", "x", starts=3, folds=lambda p: p)
    assert [t["number"] for t in kept] == [0, 4]
    # without start points: the best value of each type, as before
    kept, _ = best_of_each_type(trials, preds, "maximize", "x")
    assert [t["number"] for t in kept] == [3, 4]


@pytest.mark.timeout(900)
def test_tune_on_a_noise_table_keeps_the_defaults(ws, tmp_path) -> None:
    from roost.tune.task import tune_task

    rng = np.random.default_rng(3)
    n = 240
    df = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"x{i}" for i in range(6)])
    df["label"] = rng.integers(0, 2, n)  # no signal: any trial's edge over the defaults is luck
    path = tmp_path / "noise.parquet"
    df.to_parquet(path)
    cfg = {
        "data": str(path),
        "label": "label",
        "model": {"type": "auto", "params": {"candidates": ["logreg", "lightgbm"]}},
    }
    out = tune_task(cfg, trials=10)
    # logreg's defaults, lightgbm's table defaults, lightgbm's library defaults, auto's lightgbm_deep settings
    starts = 4
    assert out["blend"] is not None
    assert all(int(n) < starts for n in out["blend"]["weights"]), out["blend"]
