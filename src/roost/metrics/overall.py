"""Whole-set evaluation metrics for binary, multiclass and regression tasks (numpy only, checked against sklearn)."""

from __future__ import annotations

import numpy as np

EPS = 1e-15


def _as_1d(a: object, dtype: type = np.float64) -> np.ndarray:
    """Flatten to a 1-D array of `dtype`."""
    return np.asarray(a, dtype=dtype).reshape(-1)


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN for a single class."""
    from scipy.stats import rankdata

    y = _as_1d(y) > 0.5
    p = _as_1d(p)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision; NaN without positives."""
    y = _as_1d(y) > 0.5
    p = _as_1d(p)
    if not y.any():
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    idx = np.r_[np.where(np.diff(ps))[0], ys.size - 1]
    tps = np.cumsum(ys)[idx]
    fps = idx + 1 - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss_binary(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy with probabilities clipped to [1e-15, 1 - 1e-15]."""
    y = _as_1d(y)
    p = np.clip(_as_1d(p), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE of P(positive): equal-width bins, sum of |observed rate - mean predicted| weighted by bin share."""
    y = _as_1d(y)
    p = _as_1d(p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.digitize(p, edges[1:-1], right=True)
    counts = np.bincount(ids, minlength=n_bins)
    sum_y = np.bincount(ids, weights=y, minlength=n_bins)
    sum_p = np.bincount(ids, weights=p, minlength=n_bins)
    nz = counts > 0
    return float(np.sum(np.abs(sum_y[nz] - sum_p[nz])) / y.size)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, log loss, RCE (% cross-entropy gain over the base-rate predictor), accuracy, ECE."""
    y = _as_1d(y)
    p = _as_1d(p)
    if y.size == 0:
        raise ValueError("binary_metrics needs at least one row")
    ll = log_loss_binary(y, p)
    base = log_loss_binary(y, np.full_like(p, y.mean()))
    rce = float(100.0 * (1.0 - ll / base)) if base > 0 else float("nan")
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "log_loss": ll,
        "rce": rce,
        "accuracy": float(np.mean((p >= 0.5) == (y > 0.5))),
        "ece": expected_calibration_error(y, p),
    }


def multiclass_metrics(y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    """Accuracy, log loss and macro-F1 for integer class indices `y` and a probability matrix `P` [N, C]."""
    y = _as_1d(y, np.int64)
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != y.size:
        raise ValueError(f"P must have shape [{y.size}, C], got {list(P.shape)}")
    n_cls = P.shape[1]
    P = np.clip(P, EPS, 1 - EPS)
    P = P / P.sum(axis=1, keepdims=True)
    pred = P.argmax(axis=1)
    ll = float(-np.mean(np.log(P[np.arange(y.size), y])))
    f1s = []
    for c in range(n_cls):
        tp = float(np.sum((pred == c) & (y == c)))
        fp = float(np.sum((pred == c) & (y != c)))
        fn = float(np.sum((pred != c) & (y == c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    present = np.union1d(np.unique(y), np.unique(pred))
    return {
        "accuracy": float(np.mean(pred == y)),
        "log_loss": ll,
        "macro_f1": float(np.mean([f1s[c] for c in present])),
    }


def regression_metrics(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (1 - residual / total sum of squares)."""
    y = _as_1d(y)
    yhat = _as_1d(yhat)
    err = yhat - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "r2": float(r2)}


def compute(task: str, y: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """Metrics for `task` from labels (class indices or values) and model output (probabilities or values)."""
    if task == "binary":
        return binary_metrics(y, out)
    if task == "multiclass":
        return multiclass_metrics(y, out)
    if task == "regression":
        return regression_metrics(y, out)
    raise ValueError(f"unknown task {task!r}")


PRIMARY = {"binary": ("roc_auc", "max"), "multiclass": ("log_loss", "min"), "regression": ("rmse", "min")}
