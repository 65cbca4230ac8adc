"""What an autologged boosting fit leaves on the caller's thread: no per-iteration store work (the eval points are
kept in a list and logged by the background worker), no copy of a DMatrix's data for the fingerprint; the metrics
still equal the library's own history, also for a fit that raises part-way."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import roost
from roost.registry.run import Run


@pytest.fixture
def split(cancer: Any) -> tuple[Any, ...]:
    X, y, Xh, yh = cancer
    return X.to_numpy(), y.to_numpy(), Xh.to_numpy(), yh.to_numpy()


@pytest.fixture
def stepped_on_caller(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Steps of the per-iteration metric points logged from the test's own thread (the caller of `fit`)."""
    caller, seen = threading.current_thread(), []
    real = Run.log_metrics

    def spy(self: Run, metrics: dict[str, float], step: int | None = None) -> None:
        if step is not None and threading.current_thread() is caller:
            seen.append(step)
        real(self, metrics, step)

    monkeypatch.setattr(Run, "log_metrics", spy)
    return seen


def _history(rec: Any, run: dict[str, Any], key: str) -> list[float]:
    values, steps = rec.history(run["run_id"], key)
    assert steps == list(range(len(values)))
    return values


def test_lgbm_fit_logs_its_eval_points_off_the_callers_thread(rec: Any, split: Any, stepped_on_caller: Any) -> None:
    import lightgbm as lgb

    X, y, Xh, yh = split
    roost.lightgbm.autolog()
    est = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1).fit(X, y, eval_X=(Xh,), eval_y=(yh,))
    assert stepped_on_caller == []
    run = rec.only_run()
    want = est.evals_result_["valid_0"]["binary_logloss"]
    assert _history(rec, run, "valid_0-binary_logloss") == [float(v) for v in want]


def test_lgb_train_logs_its_eval_points_off_the_callers_thread(rec: Any, split: Any, stepped_on_caller: Any) -> None:
    import lightgbm as lgb

    X, y, Xh, yh = split
    roost.lightgbm.autolog()
    evals: dict[str, Any] = {}
    dtrain = lgb.Dataset(X, y)
    lgb.train({"objective": "binary", "verbose": -1}, dtrain, num_boost_round=25,
              valid_sets=[lgb.Dataset(Xh, yh, reference=dtrain)], valid_names=["v"],
              callbacks=[lgb.record_evaluation(evals)])  # fmt: skip
    assert stepped_on_caller == []
    assert _history(rec, rec.only_run(), "v-binary_logloss") == [float(v) for v in evals["v"]["binary_logloss"]]


def test_xgb_train_neither_logs_per_iteration_nor_reads_the_dmatrix_on_the_callers_thread(
    rec: Any, split: Any, stepped_on_caller: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xgboost as xgb

    caller, reads = threading.current_thread(), []
    real_get_data = xgb.DMatrix.get_data

    def get_data(self: Any) -> Any:
        reads.append(threading.current_thread() is caller)
        return real_get_data(self)

    monkeypatch.setattr(xgb.DMatrix, "get_data", get_data)
    X, y, Xh, yh = split
    roost.xgboost.autolog()
    evals: dict[str, Any] = {}
    dtrain = xgb.DMatrix(X, y)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, dtrain, num_boost_round=20,
                        evals=[(xgb.DMatrix(Xh, yh), "v")], evals_result=evals, verbose_eval=False)  # fmt: skip
    assert stepped_on_caller == []
    run = rec.only_run()  # waits for the background work
    assert reads and not any(reads)  # the DMatrix was read (fingerprint, sample), but not by the caller
    assert run["params"]["data.rows"] == len(X) and len(run["params"]["data.fingerprint"]) == 64
    assert _history(rec, run, "v-logloss") == [float(v) for v in evals["v"]["logloss"]]
    served = roost.load_model(rec.artifact(run, "model"))
    import pandas as pd

    got = served.predict(pd.DataFrame(Xh, columns=list(served.inputs)))
    np.testing.assert_allclose(got, booster.predict(xgb.DMatrix(Xh)), atol=1e-5)


def test_a_fit_that_raises_part_way_keeps_the_eval_points_before_it(rec: Any, split: Any) -> None:
    import lightgbm as lgb

    X, y, Xh, yh = split

    class StopAt6:
        def __init__(self) -> None:
            self.order = 10  # LightGBM runs callbacks by this instance attribute: before autolog's recorder (20)

        def __call__(self, env: Any) -> None:
            if env.iteration == 6:
                raise RuntimeError("stopped by the test")

    roost.lightgbm.autolog()
    evals: dict[str, Any] = {}
    dtrain = lgb.Dataset(X, y)
    with pytest.raises(RuntimeError, match="stopped by the test"):
        lgb.train({"objective": "binary", "verbose": -1}, dtrain, num_boost_round=25,
                  valid_sets=[lgb.Dataset(Xh, yh, reference=dtrain)], valid_names=["v"],
                  callbacks=[lgb.record_evaluation(evals), StopAt6()])  # fmt: skip
    run = rec.only_run()
    assert run["status"] == "FAILED"
    assert _history(rec, run, "v-binary_logloss") == [float(v) for v in evals["v"]["binary_logloss"][:6]]


def test_a_long_fits_points_reach_the_run_while_it_trains(
    rec: Any, split: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightgbm as lgb

    from roost.autologging import record
    from roost.registry import deferred

    monkeypatch.setattr(record, "LIVE_EVERY_S", 0.0)  # every iteration counts as "a second later"
    seen_at_10: list[list[float]] = []

    class ReadAt10:
        def __init__(self) -> None:
            self.order = 40  # after autolog's recorder (20)

        def __call__(self, env: Any) -> None:
            if env.iteration == 10:
                run = roost.active_run()
                deferred.wait(run.id)  # the jobs handed over so far are done
                run.flush()  # and their buffered points written (as the run's flusher does within a second)
                seen_at_10.append(rec.history(run.id, "v-binary_logloss")[0])

    X, y, Xh, yh = split
    roost.lightgbm.autolog()
    evals: dict[str, Any] = {}
    dtrain = lgb.Dataset(X, y)
    lgb.train({"objective": "binary", "verbose": -1}, dtrain, num_boost_round=20,
              valid_sets=[lgb.Dataset(Xh, yh, reference=dtrain)], valid_names=["v"],
              callbacks=[lgb.record_evaluation(evals), ReadAt10()])  # fmt: skip
    want = [float(v) for v in evals["v"]["binary_logloss"]]
    assert seen_at_10 == [want[:11]]  # iterations 0..10 readable during the fit
    assert _history(rec, rec.only_run(), "v-binary_logloss") == want
