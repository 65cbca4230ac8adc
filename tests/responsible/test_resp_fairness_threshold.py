"""Fairness warns when its threshold selects almost nobody (or almost everybody), and suggests the base rate."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from roost.responsible.group_fairness import group_metrics


def _data(n: int = 5000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """An 8 % base rate with scores that rarely pass 0.5 (a calibrated model on a rare label)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.08).astype(int)
    score = np.clip(rng.beta(1, 12, n) + 0.25 * y, 0, 1)
    sf = pd.DataFrame({"g": rng.choice(["a", "b"], n)})
    return sf, y, score


def test_rare_selection_warns_and_suggests_base_rate_threshold(caplog: pytest.LogCaptureFixture) -> None:
    sf, y, score = _data()
    share = float(np.mean(score >= 0.5))
    assert 0 < share < 0.01  # the case the issue reports: some rows selected, yet nearly all rates are 0
    with caplog.at_level(logging.WARNING, logger="roost.responsible"):
        rep = group_metrics(sf, y_true=y, y_score=score, threshold=0.5)
    notes = [w for w in rep.warnings if "threshold 0.5" in w and "base rate" in w]
    assert len(notes) == 1, rep.warnings
    suggest = float(np.quantile(score, 1 - y.mean()))  # selects the base rate, computed here independently
    assert f"{suggest:.3g}" in notes[0]
    assert any("threshold 0.5" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_almost_everyone_selected_warns() -> None:
    sf, y, score = _data(seed=1)
    rep = group_metrics(sf, y_true=y, y_score=score, threshold=float(np.quantile(score, 0.005)))
    assert any("almost every row" in w for w in rep.warnings), rep.warnings


def test_sensible_threshold_has_no_threshold_warning() -> None:
    sf, y, score = _data(seed=2)
    thr = float(np.quantile(score, 1 - y.mean()))
    rep = group_metrics(sf, y_true=y, y_score=score, threshold=thr)
    assert not [w for w in rep.warnings if "base rate" in w], rep.warnings
