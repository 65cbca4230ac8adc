"""Group fairness of a binary classifier: per-group rates and disparities, as fairlearn's MetricFrame computes them.

Per group: count, selection rate, TPR, FPR, precision (an undefined rate is 0, as fairlearn and scikit-learn
report it; a warning says so), ROC-AUC (NaN for a group with one class). Disparities between groups:
demographic-parity difference and ratio, equalised-odds difference (max of TPR and FPR differences) and ratio.
With several sensitive columns each column is reported alone and their intersection too (empty intersections are
listed with count 0). Everything is vectorised over groups (roost.metrics.groups).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.metrics import groups as G

log = logging.getLogger(__name__)
MIN_GROUP = 30
METRICS = ("count", "selection_rate", "tpr", "fpr", "precision", "roc_auc")


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (scikit-learn's zero_division=0 and confusion-matrix normalisation)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


@dataclass
class GroupTable:
    """Metrics of every group of one sensitive column (or an intersection of several)."""

    columns: list[str]
    groups: list[tuple[str, ...]]
    metrics: dict[str, np.ndarray]
    has_label: bool

    def frame(self) -> Any:
        """The table as a pandas DataFrame indexed by group (a MultiIndex for intersections)."""
        import pandas as pd

        if len(self.columns) == 1:
            idx = pd.Index([g[0] for g in self.groups], name=self.columns[0])
        else:
            idx = pd.MultiIndex.from_tuples(self.groups, names=self.columns)
        return pd.DataFrame(dict(self.metrics.items()), index=idx)

    def _present(self, key: str) -> np.ndarray:
        """Values of `key` over non-empty groups."""
        return self.metrics[key][self.metrics["count"] > 0]

    def _diff(self, key: str) -> float:
        """max − min of a metric over non-empty groups."""
        v = self._present(key)
        v = v[~np.isnan(v)]
        return float(v.max() - v.min()) if v.size else float("nan")

    def _ratio(self, key: str) -> float:
        """min / max of a metric over non-empty groups (NaN when the max is 0)."""
        v = self._present(key)
        v = v[~np.isnan(v)]
        return float(v.min() / v.max()) if v.size and v.max() > 0 else float("nan")

    def disparities(self) -> dict[str, float]:
        """Between-group differences and ratios (fairlearn's `between_groups` method)."""
        out = {
            "demographic_parity_difference": self._diff("selection_rate"),
            "demographic_parity_ratio": self._ratio("selection_rate"),
        }
        if self.has_label:
            out["equalized_odds_difference"] = max(self._diff("tpr"), self._diff("fpr"))
            out["equalized_odds_ratio"] = min(self._ratio("tpr"), self._ratio("fpr"))
        return out


@dataclass
class FairnessReport:
    """Group tables (each sensitive column, and their intersection), overall metrics and warnings."""

    sensitive: list[str]
    tables: list[GroupTable]
    overall: dict[str, float]
    threshold: float
    warnings: list[str] = field(default_factory=list)
    source: str = ""

    def table(self, columns: str | Sequence[str] | None = None) -> GroupTable:
        """The table of one column, or of the intersection (default: all sensitive columns)."""
        want = [columns] if isinstance(columns, str) else list(columns or self.sensitive)
        for t in self.tables:
            if t.columns == want:
                return t
        raise KeyError(want)

    @property
    def by_group(self) -> Any:
        """The table of all sensitive columns together, as a DataFrame."""
        return self.table().frame()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""

        def clean(v: Any) -> Any:
            v = float(v)
            return None if np.isnan(v) else v

        return {
            "kind": "fairness",
            "sensitive": self.sensitive,
            "threshold": self.threshold,
            "source": self.source,
            "overall": {k: clean(v) for k, v in self.overall.items()},
            "warnings": self.warnings,
            "tables": [
                {
                    "columns": t.columns,
                    "disparities": {k: clean(v) for k, v in t.disparities().items()},
                    "groups": [
                        {"group": list(g), **{k: clean(t.metrics[k][i]) for k in t.metrics}}
                        for i, g in enumerate(t.groups)
                    ],
                }
                for t in self.tables
            ],
        }


def _table(
    g: G.Groups,
    y: np.ndarray | None,
    yhat: np.ndarray,
    score: np.ndarray | None,
    overall: dict[str, float] | None = None,
) -> GroupTable:
    """All metrics for one grouping from one confusion bincount and one ROC-AUC pass (overall totals too)."""
    if y is None:
        cells = np.bincount(g.codes * 2 + yhat, minlength=g.n_groups * 2).reshape(g.n_groups, 2)
        n, sel = cells.sum(axis=1), cells[:, 1]
    else:
        tn, fp, fn, tp = G.confusion(g, y, yhat)
        n, sel = tn + fp + fn + tp, fp + tp
    empty = n == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        m: dict[str, np.ndarray] = {"count": n.astype(np.float64), "selection_rate": np.where(empty, np.nan, sel / n)}
    if overall is not None:
        total = float(n.sum())
        overall.update(count=total, selection_rate=float(sel.sum()) / total if total else float("nan"))
    if y is not None:
        m["tpr"] = np.where(empty, np.nan, _ratio(tp, tp + fn))
        m["fpr"] = np.where(empty, np.nan, _ratio(fp, fp + tn))
        m["precision"] = np.where(empty, np.nan, _ratio(tp, tp + fp))
        m["positives"] = (tp + fn).astype(np.float64)
        if overall is not None:
            T = [float(v.sum()) for v in (tn, fp, fn, tp)]
            overall.update(
                tpr=T[3] / (T[3] + T[2]) if T[3] + T[2] else 0.0,
                fpr=T[1] / (T[1] + T[0]) if T[1] + T[0] else 0.0,
                precision=T[3] / (T[3] + T[1]) if T[3] + T[1] else 0.0,
                roc_auc=float("nan"),
            )
        if score is None:
            m["roc_auc"] = np.full(g.n_groups, np.nan)
        elif overall is not None:
            m["roc_auc"], overall["roc_auc"] = G.roc_auc(g, y, score, overall=True)
        else:
            m["roc_auc"] = G.roc_auc(g, y, score)
    return GroupTable(list(g.columns), g.labels(), m, y is not None)


def _warnings(t: GroupTable, min_group: int) -> list[str]:
    """Plain-language warnings for small, empty and one-class groups of a table."""
    out = []
    name = " × ".join(t.columns)
    n = t.metrics["count"]
    present = int((n > 0).sum())
    if present <= 1:
        out.append(f"{name}: only one group present, so every disparity is trivially 0 (nothing to compare)")
    for i, grp in enumerate(t.groups):
        label = "/".join(grp)
        if n[i] == 0:
            out.append(f"{name}={label}: no rows (empty intersection), metrics undefined")
        elif n[i] < min_group:
            out.append(
                f"{name}={label}: only {int(n[i])} rows (< {min_group}); its rates are unreliable "
                f"(±{1 / np.sqrt(n[i]):.2f})"
            )
        if t.has_label and n[i] > 0:
            pos = t.metrics["positives"][i]
            if pos == 0 or pos == n[i]:
                which = "positive" if pos == 0 else "negative"
                rate = "TPR" if pos == 0 else "FPR"
                out.append(
                    f"{name}={label}: no {which} labels: {rate} reported as 0 (undefined, as fairlearn "
                    "reports it) and ROC-AUC undefined"
                )
    return out


def _binary_labels(y: Any, pos_label: Any = None) -> np.ndarray:
    """0/1 int array from a label column (1 = `pos_label`, or the larger of two values)."""
    import pandas as pd

    if isinstance(y, np.ndarray) and y.dtype.kind in "biu" and pos_label is None and y.size:
        if y.min() >= 0 and y.max() <= 1:  # fast path: already 0/1
            return y.astype(np.int64, copy=False)
    s = pd.Series(y)
    if s.isna().any():
        raise RoostError(f"the label has {int(s.isna().sum())} missing values", hint="drop unlabelled rows first")
    vals = sorted(s.unique().tolist(), key=str)
    if pos_label is not None:
        hit = np.asarray(s.astype(str) == str(pos_label))
        if not hit.any() and s.dtype.kind in "biuf":  # --pos-label 0 on a float label 0.0/1.0
            try:
                hit = np.asarray(s == float(pos_label))
            except (TypeError, ValueError):
                pass
        if hit.any() or not (set(vals) <= {0, 1}):
            if not hit.any() and len(vals) > 1:  # one value: a slice may lack the class
                raise RoostError(
                    f"pos_label {pos_label!r} is not a value of the label",
                    hint="values: " + ", ".join(map(str, vals[:10])),
                )
            return hit.astype(np.int64)
        # already 0/1 (a model's predictions beside string labels): pos_label names the label's class, not these
    if set(vals) <= {0, 1}:
        return np.asarray(s, dtype=np.int64)
    if len(vals) == 2:
        return np.asarray(s == vals[1], dtype=np.int64)
    raise RoostError(
        f"fairness metrics need a binary label; this one has {len(vals)} values",
        hint="pass --pos-label VALUE to treat one value as the positive class",
    )


def group_metrics(
    sensitive: Any,
    y_pred: Any = None,
    y_true: Any = None,
    y_score: Any = None,
    threshold: float = 0.5,
    min_group: int = MIN_GROUP,
    pos_label: Any = None,
    marginals: bool = True,
) -> FairnessReport:
    """Fairness report from sensitive feature(s) (DataFrame/Series), labels, and scores or 0/1 predictions.

    With several sensitive columns the report has one table per column (unless `marginals` is False) and one for
    their intersection.
    """
    import pandas as pd

    sf = sensitive.to_frame() if isinstance(sensitive, pd.Series) else pd.DataFrame(sensitive)
    sf.columns = [str(c) for c in sf.columns]
    if sf.shape[1] == 0:
        raise RoostError("no sensitive column given", hint="pass --sensitive COLUMN")
    twice = sf.columns[sf.columns.duplicated()]
    if len(twice):
        raise RoostError(f"sensitive column {twice[0]!r} is given twice", hint="name each column once")
    if not np.isfinite(threshold):
        raise RoostError(f"threshold must be a finite number, got {threshold!r}", hint="e.g. --threshold 0.5")
    if len(sf) == 0:
        raise RoostError("fairness metrics need rows; the input has no rows", hint="check the data file or filter")
    score = None if y_score is None else np.asarray(y_score, dtype=np.float64).reshape(-1)
    if score is not None and not np.isfinite(score).all():
        bad = int((~np.isfinite(score)).sum())
        raise RoostError(
            f"the score has {bad} NaN or infinite values; they cannot be ranked or thresholded",
            hint="drop those rows or fix the model's output first",
        )
    if y_pred is None:
        if score is None:
            raise RoostError("fairness needs predictions or scores", hint="pass a model or a score column")
        yhat = (score >= threshold).astype(np.int8)
    else:
        yhat = _binary_labels(y_pred, pos_label).astype(np.int8)
    y = None if y_true is None else _binary_labels(y_true, pos_label).astype(np.int8)
    if len(sf) != yhat.size or (y is not None and y.size != yhat.size):
        raise RoostError("sensitive features, labels and predictions have different lengths")
    names = list(sf.columns)
    groupings = ([[c] for c in names] if marginals or len(names) == 1 else []) + ([names] if len(names) > 1 else [])
    facts = G.factorize_columns(sf, names)
    overall: dict[str, float] = {}
    tables = [
        _table(G.combine(cols, facts), y, yhat, score, overall if k == 0 else None) for k, cols in enumerate(groupings)
    ]
    warn = [w for t in tables for w in _warnings(t, min_group)]
    sel = overall.get("selection_rate", float("nan"))
    note = None
    if y_pred is None and score is not None and score.size and y is not None:
        from roost.monitor.analysis import threshold_note

        note = threshold_note(score, threshold, float(np.mean(y)))
    if note is not None:  # the rule `monitor analyze` applies: < 1 % or > 99 % of rows selected
        log.warning("fairness: %s", note)
        warn.insert(0, note)
    elif sel in (0.0, 1.0) and y_pred is None and score is not None and score.size:
        warn.insert(
            0,
            f"{'no row' if sel == 0 else 'every row'} is selected at threshold {threshold:g} (scores "
            f"{score.min():.3g}–{score.max():.3g}): selection rates and error rates carry no information; "
            "pass the threshold the model is used at",
        )
    if y is None:
        warn.insert(0, "no label given: only selection rates and demographic parity are computed")
    return FairnessReport(names, tables, overall, float(threshold), warn)
