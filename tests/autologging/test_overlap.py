"""Autolog's cheap early steps run beside the fit, and the model's save beside the other after-fit steps: the params
and the data fingerprint reach the store while the fit still runs (they used to wait for it to return), and a
failure on the side thread is still tagged on the run."""

import time

import numpy as np
import pytest

import roost


def _stored_params(run_id):
    """The run's params as the store holds them now (not waiting for autolog's background work)."""
    from roost.registry.backend import default_store

    return default_store().get_run(run_id)["params"]


def test_params_and_fingerprint_are_written_while_the_fit_runs(rec):
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.integers(0, 2, 300)
    seen = {}

    def wait_for_params(env):
        if env.iteration:
            return
        run_id = roost.active_run().id
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "data.fingerprint" not in _stored_params(run_id):
            time.sleep(0.01)
        seen.update(_stored_params(run_id))

    roost.lightgbm.autolog(silent=True, log_models=False)
    lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(X, y, callbacks=[wait_for_params])
    assert "data.fingerprint" in seen and seen["n_estimators"] == 3  # in the store during the first iteration
    assert rec.only_run()["params"]["data.fingerprint"] == seen["data.fingerprint"]


def test_a_model_that_cannot_be_saved_is_tagged_and_the_rest_is_logged(rec, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier

    from roost.model_import import deferred

    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(deferred, "save_native", broken)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 2, 200)
    roost.sklearn.autolog(silent=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(X, y)
    run = rec.only_run()
    assert run["status"] == "FINISHED"
    assert "the model: disk full" in run["tags"]["roost.autolog.error"]
    assert run["metrics"]["training_accuracy_score"] == pytest.approx(model.score(X, y))
