"""Fixtures for responsible-ML tests: engagement rows and small LightGBM, logreg and MLP packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "monitor"))  # `mon_helpers` (importlib import mode)

from mon_helpers import build_package, engagement


@pytest.fixture(scope="session")
def eng() -> pd.DataFrame:
    """6,000 engagement rows."""
    return engagement()


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory, eng: pd.DataFrame) -> dict[str, Path]:
    """One package per explanation path: LightGBM (TreeSHAP), logreg (linear SHAP), MLP (IG)."""
    root = tmp_path_factory.mktemp("pkgs")
    return {
        "lightgbm": build_package(root / "lightgbm", "lightgbm", eng, n_estimators=30),
        "logreg": build_package(root / "logreg", "logreg", eng, epochs=3),
        "mlp": build_package(root / "mlp", "mlp", eng, epochs=2, hidden=[16]),
    }
