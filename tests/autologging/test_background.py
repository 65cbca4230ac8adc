"""Autolog's background work (training metrics, importance, the model package): the caller's fit returns before it is
done, yet every read of the run, the run's end, a refit of the same estimator and the interpreter's exit wait for it;
a failure is warned about and tagged on the run; predictions from one probability pass equal `predict`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import roost
from roost.autologging import sklearn as sk_flavor
from roost.registry import deferred


@pytest.fixture
def held_model(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The model packaging waits for the returned event: the test decides when the background work may finish."""
    release = threading.Event()
    real = sk_flavor.log_model

    def held(*args: Any) -> None:
        assert release.wait(30), "the test never released the model packaging"
        real(*args)

    monkeypatch.setattr(sk_flavor, "log_model", held)
    yield release
    release.set()
    deferred.wait()


def _release_soon(event: threading.Event) -> None:
    threading.Timer(0.2, event.set).start()


def test_fit_returns_first_and_reads_wait_for_the_model_and_metrics(rec: Any, cancer: Any, held_model: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y, Xh, _ = cancer
    roost.sklearn.autolog()
    est = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    assert deferred.pending() == 1  # fit returned while its model is still being packaged
    assert roost.active_run() is None
    _release_soon(held_model)
    run = rec.only_run()  # search_runs waits for it
    assert run["status"] == "FINISHED"
    assert "training_log_loss" in run["metrics"] and "training_accuracy_score" in run["metrics"]
    served = roost.load_model(rec.artifact(run, "model")).predict(Xh)
    np.testing.assert_allclose(served, est.predict_proba(Xh)[:, 1], atol=1e-5)


def test_the_users_run_ends_only_after_the_background_work(rec: Any, cancer: Any, held_model: Any) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y, _, _ = cancer
    roost.sklearn.autolog()
    with roost.start_run(name="mine") as run:
        RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
        _release_soon(held_model)
    got = rec.only_run()
    assert got["run_id"] == run.id and got["status"] == "FINISHED"
    assert rec.artifact(got, "model").is_dir()
    assert "training_roc_auc" in got["metrics"]


def test_a_refit_of_the_same_estimator_waits_so_the_first_run_keeps_the_first_model(
    rec: Any, cancer: Any, held_model: Any
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y, Xh, _ = cancer
    roost.sklearn.autolog()
    est = RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0)
    est.fit(X, y)
    first = est.predict_proba(Xh)[:, 1]
    _release_soon(held_model)
    est.set_params(max_depth=1).fit(X.iloc[:200], y.iloc[:200])
    runs = sorted(roost.search_runs(), key=lambda r: r["start_time"])
    assert [r["params"]["max_depth"] for r in runs] == [3, 1]
    served = roost.load_model(rec.artifact(runs[0], "model")).predict(Xh)
    np.testing.assert_allclose(served, first, atol=1e-5)


def test_a_failing_conversion_is_warned_about_and_tagged_on_the_run(
    rec: Any, cancer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from roost.errors import RoostError

    def broken(*_args: Any) -> None:
        raise RoostError("cannot convert this model on purpose")

    monkeypatch.setattr(sk_flavor, "log_model", broken)
    X, y, _, _ = cancer
    roost.sklearn.autolog()
    with caplog.at_level(logging.WARNING, logger="roost.autologging"):
        RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
        run = rec.only_run()
    assert run["status"] == "FINISHED"
    assert run["tags"]["roost.autolog.error"] == "the model: cannot convert this model on purpose"
    assert "training_accuracy_score" in run["metrics"]  # the other step still ran
    assert any("cannot convert this model on purpose" in r.getMessage() for r in caplog.records)


SCRIPT = """
import sys, threading
import roost
from roost.autologging import sklearn as sk_flavor
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

roost.use_workspace(sys.argv[1])
real, gate = sk_flavor.log_model, threading.Event()
threading.Timer(0.3, gate.set).start()

def slow(*args):
    gate.wait()
    real(*args)

sk_flavor.log_model = slow
roost.sklearn.autolog()
X, y = load_breast_cancer(return_X_y=True)
RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
print("fit returned", flush=True)
"""


def test_a_script_that_exits_right_after_fit_still_logs_its_model(ws: Any, tmp_path: Path, rec: Any) -> None:
    script = tmp_path / "fit_and_exit.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, str(script), str(ws.root)], capture_output=True, text=True, env=env,
                       timeout=300)  # fmt: skip
    assert p.returncode == 0 and "fit returned" in p.stdout, p.stderr[-3000:]
    run = rec.only_run()
    assert run["status"] == "FINISHED", run["status"]
    assert rec.artifact(run, "model").is_dir()
    assert "training_log_loss" in run["metrics"]


def test_predictions_from_one_probability_pass_equal_predict(cancer: Any) -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.semi_supervised import LabelSpreading
    from sklearn.tree import DecisionTreeClassifier

    from roost.autologging.sklearn import _argmax_predictions

    X, y, _, _ = cancer
    labels = np.where(y.to_numpy() == 1, "benign", "malignant")  # text classes: classes_ indexed, not the argmax
    three = np.digitize(X["mean radius"], [12, 16])  # three classes
    for target in (labels, three):
        for est in (
            RandomForestClassifier(n_estimators=7, random_state=0),
            ExtraTreesClassifier(n_estimators=7, random_state=0),
            CalibratedClassifierCV(GaussianNB(), cv=3),
            LabelSpreading(),
        ):
            est.fit(X.to_numpy(), target)
            got = _argmax_predictions(est, est.predict_proba(X.to_numpy()))
            assert got is not None, type(est).__name__
            np.testing.assert_array_equal(got, est.predict(X.to_numpy()))
    for other in (GaussianNB(), DecisionTreeClassifier(random_state=0)):
        other.fit(X, labels)  # their predict is not the argmax of predict_proba by construction: not taken
        assert _argmax_predictions(other, other.predict_proba(X)) is None
