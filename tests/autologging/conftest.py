"""Autolog tests: real scikit-learn, LightGBM and XGBoost fits; every flavor is switched off after each test."""

import json

import pytest


@pytest.fixture(autouse=True)
def autolog_off():
    """No test leaves a library patched."""
    yield
    import roost

    roost.autolog(disable=True)


@pytest.fixture(scope="session")
def cancer():
    """scikit-learn's breast cancer set: train features/target and a held-out frame."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:450], y.iloc[:450], X.iloc[450:], y.iloc[450:]


@pytest.fixture(scope="session")
def diabetes():
    """scikit-learn's diabetes regression set (train, held-out)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:350], y.iloc[:350], X.iloc[350:], y.iloc[350:]


class Recorded:
    """Reads back what autolog recorded in the test's workspace."""

    @staticmethod
    def only_run():
        """The one run in the workspace (asserts there is exactly one)."""
        import roost

        runs = roost.search_runs()
        assert len(runs) == 1, [r["name"] for r in runs]
        return runs[0]

    @staticmethod
    def history(run_id, key):
        """(values, steps) of a metric, as logged."""
        from roost.registry.api import metric_history

        points = metric_history(run_id, key)
        return [p["value"] for p in points], [p["step"] for p in points]

    @staticmethod
    def artifact(run, path):
        """The local path of a run's artifact."""
        from roost.registry.run import local_artifact

        return local_artifact(run, path)

    @staticmethod
    def artifact_json(run, path):
        """A run's JSON artifact, parsed."""
        return json.loads(Recorded.artifact(run, path).read_text())


@pytest.fixture
def rec(ws):
    """Read-back helpers over a fresh workspace."""
    return Recorded
