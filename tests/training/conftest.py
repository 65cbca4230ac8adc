"""Fixtures for the training tests: small mixed frames (numeric / string / id columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import mixed_frame


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    """600 mixed rows."""
    return mixed_frame()


@pytest.fixture(scope="session")
def heldout() -> pd.DataFrame:
    """200 held-out rows with unseen categories, unseen ids and missing values."""
    df = mixed_frame(200, seed=1)
    df.loc[::5, "color"] = "ultraviolet"
    df.loc[::7, "user_id"] = 10_000_019
    df.loc[::9, "x1"] = np.nan
    return df


LABELS = ["clicked", "kind", "score"]
