"""val_metrics on a diverging network's extreme logits: no overflow warning, probabilities equal to scipy's."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit, softmax

from roost.metrics import overall as M
from roost.training.trainer import val_metrics

LOGITS = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 2.5, 40.0, 800.0, 1e4, np.float32(3e38)], dtype=np.float32)
Y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1])


def test_binary_extreme_logits_match_scipy_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        got = val_metrics("binary", Y, LOGITS[:, None])
    want = M.binary_metrics(Y, expit(LOGITS.astype(np.float64)))
    assert got.keys() == want.keys()
    for k in want:
        assert np.isclose(got[k], want[k], equal_nan=True), k


def test_multiclass_extreme_logits_match_scipy_without_warnings() -> None:
    raw = np.stack([LOGITS, -LOGITS, np.zeros_like(LOGITS)], axis=1)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = val_metrics("multiclass", y, raw)
    want = M.multiclass_metrics(y, softmax(raw.astype(np.float64), axis=1))
    for k in want:
        assert np.isclose(got[k], want[k], equal_nan=True), k
