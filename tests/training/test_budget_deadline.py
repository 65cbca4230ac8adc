"""A time budget under load: the cheap strong candidates train first, every later fit stops at its deadline (real
LightGBM and real torch loops), and a slow candidate cannot starve the cheap ones."""

from __future__ import annotations

import time

import pytest

import roost
from helpers import mixed_frame
from roost.training.budget import (
    CHILD_SHARE,
    SAFETY,
    SECURED,
    SECURED_SHARE,
    child_allowance,
    child_order,
    current_deadline,
    cv_allowance,
    deadline,
    past_deadline,
)

FEATURES = ["x1", "x2", "color", "user_id"]


def test_the_secured_candidates_train_first_then_by_value_per_second() -> None:
    vps = {"wide_deep": 5.0, "lightgbm": 3.0, "logreg": 0.01, "lightgbm_defaults": 0.001, "mlp": 4.0}
    got = child_order(["wide_deep", "lightgbm", "logreg", "mlp", "lightgbm_defaults"], vps)
    assert got == [*SECURED, "wide_deep", "mlp", "lightgbm"]
    assert child_order(["mlp", "logreg"], vps) == ["logreg", "mlp"]
    assert child_allowance(40.0, True) == 40.0 * SECURED_SHARE and child_allowance(40.0, False) == 40.0 * CHILD_SHARE
    assert child_allowance(-3.0, False) == 0.0
    assert cv_allowance(2.0, 100.0) == 5.0 and cv_allowance(200.0, 100.0) == 100.0 * SAFETY


def test_deadlines_nest_to_the_earlier_one_and_end_with_their_block() -> None:
    assert current_deadline() is None and not past_deadline()
    with deadline(50.0):
        with deadline(80.0):
            assert current_deadline() == 50.0
        with deadline(None):
            assert current_deadline() == 50.0
        with deadline(20.0):
            assert current_deadline() == 20.0 and past_deadline()  # the monotonic clock is past 20 s
    assert current_deadline() is None


@pytest.mark.parametrize("kind", ["lightgbm", "wide_deep"])
def test_a_fit_that_would_run_for_minutes_stops_at_its_deadline_keeping_its_best(kind) -> None:
    from roost.training.models import make_model
    from roost.training.preprocess import infer_spec

    df = mixed_frame(600)
    X, y = df[FEATURES], df["clicked"]
    spec = infer_spec(df[[*FEATURES, "clicked"]], label="clicked")
    # 10^5 rounds / epochs with no early stopping: minutes to hours without the deadline
    params = (
        {"n_estimators": 100_000, "early_stopping_rounds": 0, "learning_rate": 0.001}
        if kind == "lightgbm"
        else {"epochs": 100_000, "patience": 100_000}
    )
    warm = {"n_estimators": 1} if kind == "lightgbm" else {"epochs": 1}
    make_model(kind, "binary", **warm).fit(X[:450], y[:450], X[450:], y[450:], spec=spec)  # imports off the clock
    model = make_model(kind, "binary", **params)
    t0 = time.monotonic()
    with deadline(t0 + 1.5):
        model.fit(X[:450], y[:450], X[450:], y[450:], spec=spec)
    took = time.monotonic() - t0
    assert took < 1.5 + 5.0  # the round / epoch that passes the deadline finishes (tolerance for a loaded machine)
    p = model.predict(X[450:])
    assert len(p) == 150 and ((p > 0) & (p < 1)).all()


def test_a_slow_candidate_cannot_starve_the_cheap_ones_and_the_budget_is_honoured(ws, tmp_path, monkeypatch) -> None:
    from roost.training.budget import Budget

    # the export reserve as on a free machine: at load 12 on 2 cores it grows sixfold (Budget.contention) and keeps
    # this 25 s budget's cross-validation out whatever the candidates do; this test is about the candidates
    monkeypatch.setattr(Budget, "contention", lambda self: 1.0)
    data = tmp_path / "d.parquet"
    mixed_frame(600).to_parquet(data)
    budget = 25.0
    cfg = {
        "data": str(data),
        "label": "clicked",
        "features": FEATURES,
        "time_budget": f"{budget:.0f}s",
        # the network never stops by itself (the trainer settings apply to the neural candidates only), and it is
        # listed first
        "trainer": {"epochs": 100_000, "patience": 100_000},
        "model": {"type": "auto", "params": {"candidates": ["wide_deep", "lightgbm", "lightgbm_defaults"]}},
    }
    t0 = time.monotonic()
    res = roost.train(cfg, progress=False)
    took = time.monotonic() - t0
    # honoured within 10 s: the fits stop at the budget's end; exporting the final package comes after it
    assert res.elapsed_s is not None and res.elapsed_s <= budget + 10.0 and took <= budget + 20.0
    assert {"lightgbm_defaults", "lightgbm"} <= set(res.candidates or {})
    # the cheap LightGBM candidates were cross-validated (not starved by the network); the stopped network, kept
    # out of cross-validation, may still weigh in on the validation rows (its best epoch so far is a model)
    assert "out-of-fold" in (res.criterion or ""), res.skipped
    assert not any(s.startswith("cross-validation of lightgbm") for s in res.skipped), res.skipped
    # the network was stopped at its share of the time left (or skipped), and the run says so
    assert any("wide_deep" in s for s in res.skipped), res.skipped
    # under a budget only the final model is exported: the children have no package of their own
    assert roost.load_model(res.package_path).predict(mixed_frame(5)[FEATURES]) is not None
