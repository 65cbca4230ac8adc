"""Fixtures for monitor tests: engagement rows and one small LightGBM package (built once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `mon_helpers` (importlib import mode)

from mon_helpers import build_package, engagement


@pytest.fixture(scope="session")
def eng() -> pd.DataFrame:
    """6,000 engagement rows over 14 days."""
    return engagement()


@pytest.fixture(scope="session")
def lgbm_pkg(tmp_path_factory: pytest.TempPathFactory, eng: pd.DataFrame) -> Path:
    """A LightGBM engagement package (model.onnx + native/model.txt)."""
    return build_package(tmp_path_factory.mktemp("pkg") / "model", "lightgbm", eng, n_estimators=30)
