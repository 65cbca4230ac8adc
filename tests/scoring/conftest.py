"""Fixtures for batch scoring: a registered scikit-learn model (`churn/1`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `predictkit` (importlib import mode)

from predictkit import fit_model


@pytest.fixture
def model(ws):
    """`churn/1` in the registry: the reference is roost.load_model of the same URI."""
    import roost

    m, X = fit_model()
    roost.log_model(m, name="churn", sample_input=X.head(100))
    return "churn/1"
