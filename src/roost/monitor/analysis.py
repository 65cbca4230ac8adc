"""Model analysis on labelled predictions: overall metrics, metrics by slice, calibration, scores, confusion matrix.

Input is a table with the label and the model's score (`pred_probability` for binary models, `pred_prediction`
for regression — the names serving logs and `evaluation.parquet` use). Slices: categories (top 10, the rest pooled)
or quantile bins of numbers; all slice metrics are computed at once per feature (roost.metrics.groups).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.metrics import groups as G

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("pred_probability", "pred_prediction")
OTHER = "(other)"
FEW_SELECTED = 0.01  # a threshold that marks fewer (or more than 1 − this) of the rows positive gets a warning


@dataclass
class Analysis:
    """Everything `analyze` found; `to_dict()` for JSON, `roost.monitor.analysis.analysis_html` for HTML."""

    task: str
    rows: int
    label: str
    score: str
    overall: dict[str, float]
    slices: dict[str, list[dict[str, Any]]]
    calibration: list[dict[str, float]] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    confusion: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    training_overlap: dict[str, Any] | None = None  # roost.monitor.overlap.TrainingOverlap.to_dict(), when checked

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN as null)."""

        def clean(o: Any) -> Any:
            if isinstance(o, dict):
                return {k: clean(v) for k, v in o.items()}
            if isinstance(o, list):
                return [clean(v) for v in o]
            if isinstance(o, (float, np.floating)):
                return None if not np.isfinite(o) else float(o)
            if isinstance(o, np.integer):
                return int(o)
            return o

        out: dict[str, Any] = clean(
            {
                "kind": "analysis",
                "task": self.task,
                "rows": self.rows,
                "label": self.label,
                "score": self.score,
                "source": self.source,
                "overall": self.overall,
                "slices": self.slices,
                "calibration": self.calibration,
                "scores": self.scores,
                "confusion": self.confusion,
                "notes": self.notes,
                "training_overlap": self.training_overlap,
            }
        )
        return out


def slice_groups(s: Any, bins: int = 5, top: int = 10) -> G.Groups:
    """Slices of one column: quantile bins for numbers with many values, else values (top `top`, rest pooled)."""
    import pandas as pd

    name = str(s.name)
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    x = s.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else np.zeros(0)
    finite = x[np.isfinite(x)]
    if numeric and len(np.unique(finite)) > bins:
        # edges from the finite values: -inf/+inf rows fall into the end bins (with them, the edges were inf/NaN)
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
        idx = np.searchsorted(edges, x, side="right")
        labels = (
            [f"< {edges[0]:.4g}"]
            + [f"[{a:.4g}, {b:.4g})" for a, b in zip(edges[:-1], edges[1:])]
            + [f"≥ {edges[-1]:.4g}"]
        )
        nan = np.isnan(x)
        if nan.any():
            idx[nan] = len(labels)
            labels.append(G.MISSING)
        return G.Groups([name], idx.astype(np.int64), [labels])
    missing = s.isna().to_numpy()
    keys = pd.Series([None if m else str(v) for v, m in zip(s.astype(object), missing)], dtype=object)  # by text
    vc = keys.value_counts(dropna=True)
    keep = [str(k) for k in vc.index[:top]]
    kept = set(keep)
    mapped = [G.MISSING if m else (v if v in kept else OTHER) for v, m in zip(keys, missing)]
    levels = keep + ([OTHER] if len(vc) > top else []) + ([G.MISSING] if missing.any() else [])
    codes = pd.Categorical(mapped, categories=levels).codes.astype(np.int64)
    return G.Groups([name], codes, [levels])


def _slice_rows(g: G.Groups, y: np.ndarray, p: np.ndarray, task: str, threshold: float) -> list[dict[str, Any]]:
    """Per-slice metrics, one dict per slice."""
    n = G.counts(g).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols: dict[str, np.ndarray] = {
            "count": n,
            "share": n / max(n.sum(), 1.0),
            "label_mean": G.sums(g, y) / n,
            "score_mean": G.sums(g, p) / n,
        }
        if task == "binary":
            cols["roc_auc"] = G.roc_auc(g, y, p)
            cols["log_loss"] = G.log_loss(g, y, p)
            cols["accuracy"] = G.sums(g, ((p >= threshold) == (y > 0.5)).astype(np.float64)) / n
        else:
            err = p - y
            cols["rmse"] = np.sqrt(G.sums(g, err * err) / n)
            cols["mae"] = G.sums(g, np.abs(err)) / n
    labels = g.labels()
    return [
        {"slice": labels[i][0], **{k: float(v[i]) for k, v in cols.items()}} for i in range(len(labels)) if n[i] > 0
    ]


def calibration(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Reliability curve on equal-width bins of the score (the bins of roost's ECE)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.digitize(p, edges[1:-1], right=True)
    cnt = np.bincount(ids, minlength=n_bins)
    sy = np.bincount(ids, weights=y, minlength=n_bins)
    sp = np.bincount(ids, weights=p, minlength=n_bins)
    return [
        {
            "lo": float(edges[i]),
            "hi": float(edges[i + 1]),
            "count": int(cnt[i]),
            "mean_score": float(sp[i] / cnt[i]),
            "label_rate": float(sy[i] / cnt[i]),
        }
        for i in range(n_bins)
        if cnt[i]
    ]


def threshold_note(p: np.ndarray, threshold: float, base_rate: float) -> str | None:
    """A warning when `threshold` marks almost no row (or almost every row) positive, else None."""
    share = float(np.mean(p >= threshold)) if p.size else 0.0
    if FEW_SELECTED <= share <= 1 - FEW_SELECTED:
        return None
    word = "almost no row" if share < FEW_SELECTED else "almost every row"
    suggest = float(np.quantile(p, 1 - base_rate)) if p.size and 0 < base_rate < 1 else threshold
    return (
        f"threshold {threshold:g} marks {word} positive ({share:.1%} of rows; the label's base rate is "
        f"{base_rate:.1%}): accuracy, rates and the confusion matrix at this threshold say little; "
        f"a threshold near {suggest:.3g} selects the base rate"
    )


def _numbers(s: Any, role: str, hint: str) -> np.ndarray:
    """A label or score column as finite float64, or a RoostError that names it."""
    try:
        v = np.asarray(s.to_numpy(dtype=np.float64))
    except (TypeError, ValueError):
        raise RoostError(f"{role} column {str(s.name)!r} does not hold numbers (dtype {s.dtype})", hint=hint) from None
    bad = int(np.count_nonzero(~np.isfinite(v)))
    if bad:
        raise RoostError(f"{role} column {str(s.name)!r} holds {bad:,} infinite value(s)", hint=hint)
    return v


def analyze(
    df: Any,
    label: str,
    score: str | None = None,
    features: list[str] | None = None,
    bins: int = 5,
    threshold: float = 0.5,
    task: str | None = None,
    max_features: int = 12,
    source: str = "",
) -> Analysis:
    """Analyse labelled predictions in `df` (label column + score column)."""
    from roost.metrics import overall as M

    if label not in df.columns:
        raise RoostError(f"label column {label!r} not in the data", hint=f"columns: {list(map(str, df.columns))}")
    score = score or next((c for c in SCORE_COLUMNS if c in df.columns), None)
    if score is None or score not in df.columns:
        raise RoostError("no score column in the data", hint="pass --score COLUMN, or a model to score the data")
    if not np.isfinite(threshold):
        raise RoostError(f"threshold {threshold} is not a finite number", hint="pass a threshold such as 0.5")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise RoostError(f"bins must be a whole number ≥ 2, got {bins!r}", hint="the default is 5 quantile bins")
    d = df[df[label].notna() & df[score].notna()]
    notes = [f"{len(df) - len(d):,} rows without label or score were left out"] if len(d) < len(df) else []
    if len(d) == 0:
        raise RoostError("no rows with both a label and a score", hint="check the join of labels and predictions")
    y = _numbers(d[label], "label", "pass a numeric label (0/1 for binary models)")
    p = _numbers(d[score], "score", "pass the column of predicted probabilities or values (--score)")
    if task is None:
        task = "binary" if set(np.unique(y)) <= {0.0, 1.0} and p.min() >= 0 and p.max() <= 1 else "regression"
    overall = M.binary_metrics(y, p) if task == "binary" else M.regression_metrics(y, p)
    if task == "binary":  # at the analysis threshold, as the slices and the confusion matrix (binary_metrics: 0.5)
        overall["accuracy"] = float(np.mean((p >= threshold) == (y > 0.5)))
    skip = {label, score}
    if features:
        feats = list(features)
    else:
        from roost.monitor.drift_compute import default_skip, skip_note

        cols = [c for c in map(str, d.columns) if c not in skip and not c.startswith(("_", "pred_"))]
        left_out = default_skip(d, cols, label)  # ids, timestamps: every slice is one row or one moment
        feats = [c for c in cols if c not in left_out][:max_features]
        if left_out:
            notes.append(skip_note(left_out).replace("features (--features)", "slices (--slice)"))
    slices = {}
    for f in feats:
        if f not in d.columns:
            notes.append(f"slice feature {f!r} is not in the data")
            continue
        slices[f] = _slice_rows(slice_groups(d[f].reset_index(drop=True), bins), y, p, task, threshold)
    an = Analysis(task, len(d), label, score, overall, slices, notes=notes, source=source)
    if task == "binary":
        an.calibration = calibration(y, p)
        edges = np.linspace(0, 1, 21)
        an.scores = {
            "edges": edges.tolist(),
            "positive": np.histogram(p[y > 0.5], edges)[0].tolist(),
            "negative": np.histogram(p[y <= 0.5], edges)[0].tolist(),
        }
        yhat = p >= threshold
        yb = y > 0.5
        an.confusion = {
            "threshold": threshold,
            "tn": int((~yhat & ~yb).sum()),
            "fp": int((yhat & ~yb).sum()),
            "fn": int((~yhat & yb).sum()),
            "tp": int((yhat & yb).sum()),
        }
        if len(np.unique(y)) < 2:
            notes.append("the label has one class only: ROC-AUC and calibration are not meaningful")
        warn = threshold_note(p, threshold, float(np.mean(y > 0.5)))
        if warn:
            log.warning("%s", warn)
            notes.append(warn)
    else:
        lo, hi = float(min(p.min(), y.min())), float(max(p.max(), y.max()))
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 21)
        an.scores = {
            "edges": edges.tolist(),
            "prediction": np.histogram(p, edges)[0].tolist(),
            "label": np.histogram(y, edges)[0].tolist(),
        }
    return an


def join_labels(logs: Any, labels: Any, on: list[str]) -> Any:
    """Serving-log rows joined with labels that arrived later (inner join on `on`)."""
    missing = [c for c in on if c not in logs.columns or c not in labels.columns]
    if missing:
        raise RoostError(
            f"join column(s) {missing} not in both the logs and the labels",
            hint="pass --on with columns both tables have (e.g. _request_id,_row or an entity id)",
        )
    dup = labels.duplicated(subset=on)
    if dup.any():
        labels = labels[~dup]
    return logs.merge(labels, on=on, how="inner", suffixes=("", "_label"))
