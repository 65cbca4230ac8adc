"""Autolog keeps at most one copy of the fit data while its background work is pending (scikit-learn: one snapshot
shared by the fingerprint and the training metrics), and none for data over SNAPSHOT_MAX_BYTES (fingerprinted on the
caller's thread before the fit returns)."""

from __future__ import annotations

import threading
import tracemalloc
from typing import Any

import numpy as np
import pytest

import roost
from roost.autologging import record
from roost.registry import deferred


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The background worker waits for the event before its first job: what it holds stays allocated."""
    release = threading.Event()
    real = deferred.submit

    def held_submit(run: Any, fn: Any, what: str, key: Any = None) -> None:
        real(run, lambda: (release.wait(30), fn()) and None, what, key)

    monkeypatch.setattr(deferred, "submit", held_submit)
    yield release
    release.set()
    deferred.wait()


def _held_bytes(fit: Any) -> int:
    """Bytes still allocated once `fit()` returned (its result dropped), while the background work is held."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fit()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_sklearn_fit_keeps_one_copy_of_x(rec: Any, gate: threading.Event) -> None:
    from sklearn.dummy import DummyClassifier

    X = np.random.default_rng(0).normal(size=(2000, 500))  # 8 MB
    y = (X[:, 0] > 0).astype(int)
    roost.sklearn.autolog(log_models=False)
    est = DummyClassifier()
    held = _held_bytes(lambda: est.fit(X, y))
    assert X.nbytes <= held < 1.5 * X.nbytes, held / X.nbytes  # before: two copies (fingerprint, metrics)
    gate.set()
    run = rec.only_run()
    assert run["metrics"]["training_accuracy_score"] == pytest.approx(float(np.mean(y == est.predict(X))))
    assert run["params"]["data.fingerprint"] == record.fingerprint(X, y)["data.fingerprint"]


def test_data_over_the_bound_is_fingerprinted_at_once_not_copied(
    rec: Any, gate: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightgbm as lgb

    X = np.random.default_rng(1).normal(size=(2000, 500))
    y = (X[:, 0] > 0).astype(int)
    monkeypatch.setattr(record, "SNAPSHOT_MAX_BYTES", X.nbytes - 1)
    roost.lightgbm.autolog(log_models=False)
    held = _held_bytes(lambda: lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y))
    assert held < 0.5 * X.nbytes, held / X.nbytes  # before: a whole copy for the fingerprint
    gate.set()
    assert rec.only_run()["params"]["data.fingerprint"] == record.fingerprint(X, y)["data.fingerprint"]
