"""The persisted ask/tell engine: grid coverage, leases, idempotent asks, tell rules, pruning, Optuna parity."""

from __future__ import annotations

import itertools
import math

import pytest

from roost.errors import ConfigError, NotFoundError
from roost.tune.engine import Engine, TellConflict
from roost.tune.search_space import SpaceError, point_key


class Clock:
    """A settable clock for lease tests."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _drain(eng: Engine, sid: str, fn) -> list[dict]:
    """Ask and tell until the study is done; returns the asked trials."""
    out = []
    while True:
        r = eng.ask(sid, client_id="c")
        if r["trial"] is None:
            assert r["done"]
            return out
        out.append(r["trial"])
        eng.tell(sid, r["trial"]["number"], fn(r["trial"]["params"]))


def test_grid_covers_the_full_product_exactly_once(ws) -> None:
    eng = Engine()
    space = {"a": {"int": [1, 3]}, "b": ["x", "y", "z"], "c": {"choice": [0.1, 1.0]}}
    st = eng.create_study(space, sampler="grid", max_trials=100)
    asked = _drain(eng, st["id"], lambda p: p["a"] * (p["c"]))
    product = [{"a": a, "b": b, "c": c} for a, b, c in itertools.product([1, 2, 3], ["x", "y", "z"], [0.1, 1.0])]
    assert sorted(point_key(t["params"]) for t in asked) == sorted(map(point_key, product))
    assert len(asked) == 18
    r = eng.ask(st["id"], client_id="other")
    assert r["trial"] is None and r["done"] and "exhausted" in r["reason"]


def test_auto_picks_grid_when_it_fits_and_gp_for_small_flat_budgets(ws) -> None:
    eng = Engine()
    assert eng.create_study({"a": ["x", "y"], "b": {"int": [1, 3]}}, max_trials=6)["sampler_used"] == "grid"
    assert eng.create_study({"a": ["x", "y"], "b": {"int": [1, 3]}}, max_trials=5)["sampler_used"] == "gp"
    assert eng.create_study({"lr": {"loguniform": [1e-4, 1]}}, max_trials=1000)["sampler_used"] == "tpe"
    cond = {"k": ["a", "b"], "x": {"uniform": [0, 1], "when": {"k": "a"}}}
    assert eng.create_study(cond, max_trials=30)["sampler_used"] == "tpe"


def test_lease_expiry_reissues_the_same_trial(ws) -> None:
    clock = Clock()
    eng = Engine(clock=clock)
    st = eng.create_study({"x": {"uniform": [0, 1]}}, sampler="random", lease_s=60, max_trials=1)
    a = eng.ask(st["id"], client_id="a")["trial"]
    wait = eng.ask(st["id"], client_id="b")
    assert wait["trial"] is None and not wait["done"] and wait["retry_after"] == pytest.approx(60)
    clock.t += 61
    b = eng.ask(st["id"], client_id="b")["trial"]
    assert b["number"] == a["number"] and b["params"] == a["params"]
    assert b["client_id"] == "b" and b["attempts"] == 2
    assert eng.ask(st["id"], client_id="c")["trial"] is None  # b's lease is live
    eng.tell(st["id"], b["number"], 0.5)
    assert eng.ask(st["id"], client_id="c")["done"]


def test_ask_is_idempotent_per_client_and_renews_the_lease(ws) -> None:
    clock = Clock()
    eng = Engine(clock=clock)
    st = eng.create_study({"x": {"uniform": [0, 1]}}, sampler="random", lease_s=60)
    first = eng.ask(st["id"], client_id="a")["trial"]
    clock.t += 50
    again = eng.ask(st["id"], client_id="a")["trial"]
    assert again["number"] == first["number"] and again["lease_expires"] == clock.t + 60
    other = eng.ask(st["id"], client_id="b")["trial"]
    assert other["number"] != first["number"]
    eng.tell(st["id"], first["number"], 1.0)
    assert eng.ask(st["id"], client_id="a")["trial"]["number"] not in (first["number"], other["number"])


def test_tell_rules_unknown_second_nan(ws) -> None:
    eng = Engine()
    st = eng.create_study({"x": {"uniform": [0, 1]}}, sampler="random")
    sid = st["id"]
    with pytest.raises(NotFoundError):
        eng.tell(sid, 7, 1.0)
    with pytest.raises(NotFoundError):
        eng.ask("nope")
    t0, t1, t2 = (eng.ask(sid, client_id=c)["trial"]["number"] for c in "abc")
    eng.tell(sid, t0, 2.0)
    with pytest.raises(TellConflict) as e:
        eng.tell(sid, t0, 3.0)
    assert e.value.stored["value"] == 2.0 and e.value.stored["state"] == "COMPLETE"
    assert eng.tell(sid, t1, float("nan"))["state"] == "FAIL"
    eng.tell(sid, t2, "inf")
    with pytest.raises(ConfigError):
        eng.tell(sid, t2, "abc")
    view = eng.study(sid)
    assert view["best_trial"]["number"] == t0 and view["best_trial"]["value"] == 2.0
    assert view["counts"] == {"WAITING": 0, "RUNNING": 0, "COMPLETE": 1, "PRUNED": 0, "FAIL": 2}
    assert "nan" in view["trials"][t1]["reason"]


def test_add_trial_validates_and_enqueued_points_are_asked_first(ws) -> None:
    eng = Engine()
    sid = eng.create_study({"x": {"uniform": [0, 1]}, "n": {"int": [1, 4]}}, sampler="random")["id"]
    with pytest.raises(SpaceError) as e:
        eng.add_trial(sid, {"x": 2.0, "n": 1})
    assert e.value.param == "x"
    eng.add_trial(sid, {"x": 0.25, "n": 3}, value=0.1)  # a known result
    eng.add_trial(sid, {"x": 0.5, "n": 2})  # enqueued
    t = eng.ask(sid, client_id="a")["trial"]
    assert t["params"] == {"x": 0.5, "n": 2} and t["number"] == 1
    assert eng.study(sid)["best_trial"]["params"] == {"x": 0.25, "n": 3}


def test_median_pruner_stops_a_bad_trial(ws) -> None:
    eng = Engine()
    sid = eng.create_study({"x": {"uniform": [0, 1]}}, sampler="random", pruner="median")["id"]
    for _ in range(5):  # five finished curves: 1/(s+1)
        n = eng.ask(sid, client_id="w")["trial"]["number"]
        for s in range(1, 4):
            assert not eng.report(sid, n, s, 1.0 / (s + 1))["prune"]
        eng.tell(sid, n, 0.25)
    bad = eng.ask(sid, client_id="w")["trial"]["number"]
    assert not eng.report(sid, bad, 1, 0.4)["prune"]  # warm-up step
    assert eng.report(sid, bad, 2, 5.0)["prune"]
    eng.tell(sid, bad, state="pruned")
    t = eng.study(sid)["trials"][bad]
    assert t["state"] == "PRUNED" and t["value"] == 5.0 and t["intermediate"] == {"1": 0.4, "2": 5.0}
    with pytest.raises(TellConflict):
        eng.report(sid, bad, 3, 0.1)


def test_hyperband_decisions_persist_their_bookkeeping(ws) -> None:
    eng = Engine()
    sid = eng.create_study({"x": {"uniform": [0, 1]}}, sampler="random", pruner="hyperband", seed=1)["id"]
    decisions = []
    for i in range(12):
        n = eng.ask(sid, client_id="w")["trial"]["number"]
        pruned = False
        for s in range(1, 10):
            if eng.report(sid, n, s, (i % 4) + 1.0 / s)["prune"]:
                pruned = True
                break
        eng.tell(sid, n, state="pruned") if pruned else eng.tell(sid, n, (i % 4) + 0.1)
        decisions.append(pruned)
    assert any(decisions) and not all(decisions)
    attrs = [t for t in eng.store.list_objects("tune.trial").values() if t["system_attrs"]]
    assert attrs, "hyperband's rung records are persisted with the trials"


def test_engine_sampling_reproduces_optuna_exactly(ws) -> None:
    import optuna

    from roost.tune.objectives import BRANIN_SPACE, branin_xy

    eng = Engine()
    sid = eng.create_study(BRANIN_SPACE, sampler="tpe", seed=11, max_trials=25)["id"]
    ours = [t["value"] for t in (_drain(eng, sid, lambda p: branin_xy(p["x"], p["y"])) and eng.study(sid)["trials"])]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ref = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=11, multivariate=True, constant_liar=True))
    ref.optimize(lambda t: branin_xy(t.suggest_float("x", -5, 10), t.suggest_float("y", 0, 15)), 25)
    assert ours == [t.value for t in ref.trials]
    assert all(math.isfinite(v) for v in ours)
