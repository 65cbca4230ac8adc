"""A classifier's training metrics from one pass of numpy over its labels, predictions and probabilities: the values
of scikit-learn's accuracy_score, precision_recall_fscore_support(average="weighted"), log_loss and roc_auc_score
(binary, or multiclass one-vs-rest weighted), computed with the same operations in the same order, without each
function validating, encoding and counting the labels again (several ms per fit on 10k rows).

Only plain cases take this path (`fast_classification_metrics` returns None for the rest, and the caller asks
scikit-learn): 1-D labels that are all among the model's sorted, unique `classes_`, a float64 (n, classes)
probability matrix whose rows sum to one, float64-castable sample weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fast_classification_metrics(
    classes: Any, y: Any, pred: Any, proba: Any, sample_weight: Any = None
) -> dict[str, float] | None:
    """{"training_accuracy_score", "training_precision_score", "training_recall_score", "training_f1_score",
    "training_log_loss", "training_roc_auc"} (the last two only with `proba`), or None when the inputs are not a plain
    case (then scikit-learn's functions give them)."""
    try:
        enc = _encode(classes, y, pred, proba, sample_weight)
    except (TypeError, ValueError):  # labels numpy cannot compare with the classes: not a plain case
        return None
    if enc is None:
        return None
    k, yi, pi, p, sw = enc
    out: dict[str, float] = {"training_accuracy_score": float(np.average(yi == pi, weights=sw))}
    out["training_precision_score"], out["training_recall_score"], out["training_f1_score"] = _prf_weighted(
        k, yi, pi, sw
    )
    if p is not None:
        out["training_log_loss"] = _log_loss(k, yi, p, sw)
        auc = _roc_auc(k, yi, p, sw)
        if auc is None:
            return None
        out["training_roc_auc"] = auc
    return out


def _encode(
    classes: Any, y: Any, pred: Any, proba: Any, sample_weight: Any
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None:
    """(classes, y and pred as class indices, proba, weights as float64), or None for anything but a plain case."""
    classes = np.asarray(classes)
    y, pred = np.asarray(y), np.asarray(pred)
    k = len(classes)
    if classes.ndim != 1 or k < 2 or y.ndim != 1 or pred.shape != y.shape or len(y) == 0:
        return None
    if classes.dtype.kind not in "iufbUSO" or y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        return None
    if not bool(np.all(classes[:-1] < classes[1:])):  # sorted and unique, as scikit-learn's label encoding orders
        return None
    idx = []
    for labels in (y, pred):
        i = np.searchsorted(classes, labels)
        if np.any(i >= k) or not np.array_equal(classes[np.minimum(i, k - 1)], labels):
            return None  # a label outside classes_
        idx.append(i)
    sw = None
    if sample_weight is not None:
        sw = np.asarray(sample_weight)
        if sw.shape != y.shape or sw.dtype.kind not in "iuf" or sw.dtype.kind == "f" and sw.dtype != np.float64:
            return None
        sw = sw.astype(np.float64, copy=False)
        if not np.all(np.isfinite(sw)):
            return None
    p = None
    if proba is not None:
        p = proba
        if not isinstance(p, np.ndarray) or p.dtype != np.float64 or p.shape != (len(y), k):
            return None
        if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            return None
        if not np.allclose(1, p.sum(axis=1)):  # scikit-learn's multiclass ROC AUC refuses these: its own error
            return None
    return k, idx[0], idx[1], p, sw


def _prf_weighted(k: int, yi: np.ndarray, pi: np.ndarray, sw: np.ndarray | None) -> tuple[float, float, float]:
    """precision_recall_fscore_support(y, pred, average="weighted", sample_weight=sw)[:3]: per label present in y or
    pred (sorted), tp / pred and tp / true counts (weighted), F1 = 2 tp / (true + pred), averaged weighted by true."""
    present = np.flatnonzero(np.bincount(yi, minlength=k) + np.bincount(pi, minlength=k))
    hit = yi == pi
    tp_bins = yi[hit]
    tp_sum: np.ndarray
    if tp_bins.shape[0]:
        tp_sum = np.bincount(tp_bins, weights=None if sw is None else sw[hit], minlength=k)[present]
    else:
        tp_sum = np.zeros(len(present))
    pred_sum: np.ndarray = np.bincount(pi, weights=sw, minlength=k)[present]
    true_sum: np.ndarray = np.bincount(yi, weights=sw, minlength=k)[present]
    # as scikit-learn's multilabel confusion matrix hands them on: fp and fn, then tp + fp and tp + fn again
    pred_sum = tp_sum + (pred_sum - tp_sum)
    true_sum = tp_sum + (true_sum - tp_sum)
    precision = _divide(tp_sum, pred_sum)
    recall = _divide(tp_sum, true_sum)
    f1 = _divide(2.0 * tp_sum.astype(np.float64), 1.0 * true_sum.astype(np.float64) + pred_sum.astype(np.float64))
    return (
        _weighted_average(precision, true_sum),
        _weighted_average(recall, true_sum),
        _weighted_average(f1, true_sum),
    )


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den in float64, 0 where den is 0 (scikit-learn's zero_division="warn" value)."""
    mask = den == 0
    d = np.asarray(den, dtype=np.float64).copy()
    d[mask] = 1
    out = np.asarray(num, dtype=np.float64) / d
    out[mask] = 0.0
    return out


def _weighted_average(a: np.ndarray, weights: np.ndarray) -> float:
    """scikit-learn's _nanaverage: NaN-free here; an unweighted mean when the weights sum to zero."""
    if a.shape[0] == 0:
        return float("nan")
    try:
        return float(np.average(a, weights=weights))
    except ZeroDivisionError:
        return float(np.average(a))


def _log_loss(k: int, yi: np.ndarray, p: np.ndarray, sw: np.ndarray | None) -> float:
    """log_loss(y, proba, labels=classes, sample_weight=sw): one-hot labels, probabilities clipped to [eps, 1-eps],
    x * log(p) with 0 where x is 0, summed per row, (weighted) mean."""
    onehot = np.zeros((len(yi), k), dtype=np.float64)
    onehot[np.arange(len(yi)), yi] = 1.0
    eps = np.finfo(p.dtype).eps
    clipped = np.clip(p, eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        temp = onehot * np.log(clipped)
    xlogy = np.where(onehot == 0.0, np.asarray(0.0, dtype=temp.dtype), temp)
    loss = -np.sum(xlogy, axis=1)
    return float(np.average(loss, weights=sw))


def _roc_auc(k: int, yi: np.ndarray, p: np.ndarray, sw: np.ndarray | None) -> float | None:
    """roc_auc_score(y, proba[:, 1]) for two classes, else roc_auc_score(y, proba, multi_class="ovr",
    average="weighted", labels=classes): each class against the rest, averaged weighted by its (weighted) count.
    None where scikit-learn would warn and give NaN for a reason this path does not follow."""
    if k == 2:
        if len(np.unique(yi)) != 2:
            return float("nan")  # scikit-learn: one class only, undefined (NaN, left out of the metrics)
        return _binary_auc((yi == 1).astype(np.int64), p[:, 1], sw)
    onehot = (yi[:, None] == np.arange(k)[None, :]).astype(np.int64)  # label_binarize(y, classes=classes)
    if sw is not None:
        weight = np.sum(np.multiply(onehot, np.reshape(sw, (-1, 1))), axis=0)
    else:
        weight = np.sum(onehot, axis=0)
    if np.isclose(weight.sum(), 0.0):
        return 0.0
    score = np.zeros((k,))
    for c in range(k):
        t = onehot[:, c]
        if len(np.unique(t)) != 2:
            score[c] = np.nan  # a class absent from y: weight 0 below
            continue
        auc = _binary_auc(t, p[:, c].copy(), sw)
        if auc is None:
            return None
        score[c] = auc
    score[np.asarray(weight) == 0] = 0
    return float(np.average(score, weights=weight))


def _binary_auc(t: np.ndarray, score: np.ndarray, sw: np.ndarray | None) -> float | None:
    """roc_curve(t, score, sample_weight=sw) (zero weights dropped, stable descending sort, a threshold where the
    score changes, collinear points dropped) and the trapezoidal area under it."""
    from scipy.integrate import trapezoid

    if sw is not None:
        keep = sw != 0
        t, score, sw = t[keep], score[keep], sw[keep]
    order = np.argsort(-score, kind="stable")  # the unique stable descending order (scores are finite)
    score, t = score[order], t[order]
    weight: Any = 1.0 if sw is None else sw[order]
    thresholds = np.concatenate([np.nonzero(np.diff(score))[0], np.asarray([t.shape[0] - 1])])
    tf = t.astype(np.float64)
    tps = np.cumsum(tf * weight, dtype=np.float64)[thresholds]
    if sw is not None:
        fps = np.cumsum((1 - tf) * weight, dtype=np.float64)[thresholds]
    else:
        fps = 1 + thresholds.astype(np.float64) - tps
    if fps.shape[0] > 2:
        keep_idx = np.where(
            np.concatenate([np.asarray([True]), np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), np.asarray([True])])
        )[0]
        fps, tps = fps[keep_idx], tps[keep_idx]
    tps = np.concatenate([np.asarray([0.0]), tps])
    fps = np.concatenate([np.asarray([0.0]), fps])
    if fps[-1] <= 0 or tps[-1] <= 0:
        return None  # every remaining weight on one side: scikit-learn warns and gives NaN
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    if fpr.shape[0] < 2:
        return None
    dx = np.diff(fpr)
    direction = 1
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            return None
        direction = -1
    return float(direction * trapezoid(tpr, fpr))
