"""The budget's cross-validation schedule on synthetic costs and a synthetic clock (no machine speed involved):
costs that fit skip nothing, a tight budget keeps the most valuable step, a wrong estimate is corrected after the
first fold, and a step skipped at first runs when the time left fits it."""

from __future__ import annotations

import itertools

import pytest

from roost.training.budget import SAFETY, Budget
from roost.training.budget_schedule import Schedule


class Clock:
    """A synthetic clock: time passes only when a fold 'runs'."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(sched: Schedule, clock: Clock, actual: dict[str, float]) -> list[str]:
    """Drive the schedule as auto_select does, each fold model of c taking actual[c] s; the order of the
    cross-validations started."""
    started = []
    while (name := sched.next()) is not None:
        started.append(name)
        for _ in range(sched.fits):
            clock.now += actual[name]
            if not sched.fold_done(actual[name]):
                break
        else:
            sched.finished()
    return started


def schedule(seconds: float, costs: dict[str, float], values: dict[str, float], **kw) -> tuple[Schedule, Clock]:
    clock = Clock()
    return Schedule(Budget(seconds, clock=clock), costs, values, 5, **kw), clock


def test_costs_that_fit_skip_nothing_and_the_best_candidate_goes_first() -> None:
    costs = {"cheap": 0.5, "best": 2.0, "mid": 1.0}
    sched, clock = schedule(100.0, costs, {"cheap": 0.1, "best": 1.0, "mid": 0.5})
    started = run(sched, clock, costs)
    assert started == ["best", "mid", "cheap"]  # by value, the best child first
    assert set(sched.spent) == set(costs) and sched.skipped() == [] and not sched.cut
    assert clock.now == pytest.approx(5 * 3.5)


def test_a_tight_budget_keeps_the_most_valuable_step() -> None:
    # 34 s to spend (40 × SAFETY): "best" alone (30 s) or the two others (15 + 15 s, worth 0.5 together)
    costs = {"best": 6.0, "b": 3.0, "c": 3.0}
    sched, clock = schedule(40.0, costs, {"best": 1.0, "b": 0.3, "c": 0.2})
    assert 5 * 6.0 <= 40.0 * SAFETY < 5 * 6.0 + 5 * 3.0
    started = run(sched, clock, costs)
    assert started == ["best"] and set(sched.spent) == {"best"}
    skipped = sched.skipped()
    assert len(skipped) == 2 and all(s.startswith("cross-validation of ") for s in skipped)
    assert any("of b (estimated 15 s, 10 s left)" in s for s in skipped)
    assert clock.now <= 40.0


def test_an_estimate_that_proves_wrong_after_the_first_fold_is_corrected() -> None:
    # "slow" was estimated at 1 s a fold model and takes 10 s: after its first fold its remaining four (40 s) no
    # longer fit in what is left, so it is cut there and the time goes to "other"
    sched, clock = schedule(40.0, {"slow": 1.0, "other": 2.0}, {"slow": 1.0, "other": 0.5})
    started = run(sched, clock, {"slow": 10.0, "other": 2.0})
    assert started == ["slow", "other"]
    assert "slow" in sched.cut and "4 remaining folds need 40 s" in sched.cut["slow"]
    assert set(sched.spent) == {"other"} and clock.now == pytest.approx(10.0 + 10.0) and clock.now <= 40.0
    assert sched.skipped() == [f"cross-validation of slow ({sched.cut['slow']})"]


def test_a_pessimistic_estimate_is_corrected_by_the_measured_folds_of_its_kind() -> None:
    # b's first estimate (10 s a fold: 50 s) does not fit; a, of the same kind, runs at a quarter of its estimate,
    # so b's estimate becomes 2.5 s a fold (12.5 s) and b runs: a step whose estimate fits is never skipped
    costs = {"a": 2.0, "b": 10.0}
    sched, clock = schedule(40.0, costs, {"a": 1.0, "b": 0.9}, kinds={"a": "lightgbm", "b": "lightgbm"})
    started = run(sched, clock, {"a": 0.5, "b": 2.5})
    assert started == ["a", "b"] and set(sched.spent) == {"a", "b"} and sched.skipped() == []
    other, clock2 = schedule(40.0, costs, {"a": 1.0, "b": 0.9}, kinds={"a": "lightgbm", "b": "torch"})
    assert run(other, clock2, {"a": 0.5, "b": 2.5}) == ["a"]  # another kind keeps its own estimate
    assert other.skipped() == ["cross-validation of b (estimated 50 s, 38 s left)"]


def test_a_step_skipped_at_first_runs_when_the_time_left_fits_it() -> None:
    # at first best + b (35 s) leave no room for c (15 s of 34); best and b then take half their estimate, and
    # c fits in what is left
    costs = {"best": 4.0, "b": 3.0, "c": 3.0}
    sched, clock = schedule(40.0, costs, {"best": 1.0, "b": 0.3, "c": 0.2})
    assert sched.planned() in (("best",), ("b", "c"), ("c", "b")) or "c" not in sched.planned()
    run(sched, clock, {"best": 2.0, "b": 1.5, "c": 3.0})
    assert set(sched.spent) == {"best", "b", "c"} and sched.skipped() == []
    assert clock.now <= 40.0


def test_a_started_candidate_gives_way_when_the_others_are_worth_more_than_its_remaining_folds() -> None:
    # "a" turns out 6 × its estimate: after its first fold (34 s left) its remaining four (24 s) would still fit
    # in 34 × SAFETY, but then neither b nor c (5 s each) would, and together they are worth more than a
    costs = {"a": 1.0, "b": 1.0, "c": 1.0}
    sched, clock = schedule(40.0, costs, {"a": 1.0, "b": 0.8, "c": 0.8})
    assert 24.0 < 34.0 * SAFETY < 24.0 + 5.0
    run(sched, clock, {"a": 6.0, "b": 1.0, "c": 1.0})
    assert "a" in sched.cut and "better spent on others" in sched.cut["a"]
    assert set(sched.spent) == {"b", "c"} and clock.now <= 40.0


def test_the_package_reserve_and_exports_are_kept_free() -> None:
    costs = {"a": 2.0}
    fits = Schedule(Budget(40.0, clock=Clock()), costs, {"a": 1.0}, 5, held=20.0)
    assert fits.planned() == ("a",)  # 10 s of folds in (40 - 20) × SAFETY
    assert Schedule(Budget(40.0, clock=Clock()), costs, {"a": 1.0}, 5, held=30.0).planned() == ()
    exported = Schedule(Budget(40.0, clock=Clock()), costs, {"a": 1.0}, 5, exports={"a": 5.0})
    assert exported.planned() == ()  # 10 s of folds + 25 s exporting its five members > 34 s


def test_without_a_budget_every_candidate_runs_in_order() -> None:
    names = ["x", "y", "z"]
    values = {n: 1.0 - j / 4 for j, n in enumerate(names)}
    sched = Schedule(Budget(None), dict.fromkeys(names, 0.0), values, 5)
    started = run(sched, Clock(), dict.fromkeys(names, 1000.0))
    assert started == names and sched.skipped() == []


@pytest.mark.parametrize("seed", range(3))
def test_random_schedules_stay_in_the_budget_and_leave_out_nothing_that_fits(seed) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(40):
        names = [f"c{j}" for j in range(int(rng.integers(1, 5)))]
        est = {c: float(rng.uniform(0.2, 6)) for c in names}
        actual = {c: est[c] * float(rng.choice([0.5, 1.0, 3.0])) for c in names}
        values = {c: float(rng.uniform(0.05, 1)) for c in names}
        seconds = float(rng.uniform(5, 80))
        sched, clock = schedule(seconds, est, values)
        run(sched, clock, actual)
        # each fold starts only when the candidate's remaining folds fit by the estimate then; a fold model
        # 3 × its first estimate may overrun by that one fold at most
        assert clock.now <= seconds * SAFETY + max(actual.values()) + 1e-9
        left = seconds - clock.now
        for c in itertools.chain(sched.untried()):
            assert sched.fits * sched.est[c] > left * SAFETY - 1e-9, (c, sched.skipped())


def test_the_package_reserve_grows_with_the_contention(monkeypatch) -> None:
    contention = [1.0]
    monkeypatch.setattr(Budget, "contention", lambda self: contention[0])
    sched = Schedule(Budget(40.0, clock=Clock()), {"a": 2.0}, {"a": 1.0}, 5, held=10.0)
    assert sched.planned() == ("a",)  # 10 s of folds in (40 - 10) × SAFETY
    contention[0] = 3.0  # the machine got three times busier since the schedule was made: exports slow down too
    assert sched.reserved() == pytest.approx(30.0) and sched.planned() == ()
