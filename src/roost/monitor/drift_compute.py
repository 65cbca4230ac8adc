"""Per-feature drift between a reference and a current table: statistics, thresholds, verdicts, explained issues.

Every feature gets all statistics that apply (numeric: KS, Wasserstein, PSI, Jensen–Shannon; categorical: chi²,
PSI, Jensen–Shannon); one of them decides. `method="auto"` picks Evidently's default: up to 1,000 reference rows
KS (numbers) or chi² (categories), above that normed Wasserstein (numbers with more than 5 distinct values) or
Jensen–Shannon. Problems with the input (a column missing, all null, constant) are reported, not raised.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from roost.errors import RoostError
from roost.monitor import stats as S

log = logging.getLogger(__name__)

# method -> (statistic key, default threshold, drift when the value is "above" or "below" the threshold)
METHODS: dict[str, tuple[str, float, str]] = {
    "ks": ("ks_pvalue", 0.05, "below"),
    "chi2": ("chi2_pvalue", 0.05, "below"),
    "wasserstein": ("wasserstein_norm", 0.1, "above"),
    "js": ("js", 0.1, "above"),
    "psi": ("psi", 0.1, "above"),
}
NUMERIC_ONLY = {"ks", "wasserstein"}
SMALL_REFERENCE = 1000
DRIFT_SHARE = 0.5
MISSING_JUMP = 0.1  # a rise of the missing share by this much counts as drift on its own
# left out of the default feature list (pass `features` to compare them anyway)
LABEL_NAMES = ("label", "target")
ID_NAME = re.compile(r"(^id$|_id$|Id$|^id_|^uuid$|_uuid$)")
ID_UNIQUE_SHARE = 0.9  # text columns this unique (with ≥ ID_MIN_ROWS values) are row identifiers
ID_MIN_ROWS = 100


@dataclass
class FeatureDrift:
    """The drift verdict of one feature, with every statistic and the reason when it could not be tested."""

    feature: str
    kind: str
    status: str  # ok | drift | missing | empty | new | untested (no statistic could be computed)
    method: str | None = None
    score: float | None = None
    threshold: float | None = None
    drifted: bool = False
    stats: dict[str, float] = field(default_factory=dict)
    n_ref: int = 0
    n_cur: int = 0
    missing_ref: float = 0.0
    missing_cur: float = 0.0
    notes: list[str] = field(default_factory=list)
    bins: dict[str, Any] = field(default_factory=dict)


@dataclass
class DriftReport:
    """Drift of every feature and the dataset verdict (drifted share ≥ `drift_share`)."""

    features: list[FeatureDrift]
    drift_share: float
    reference: str
    current: str
    rows_ref: int
    rows_cur: int
    approximate: bool = False
    notes: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def tested(self) -> list[FeatureDrift]:
        """Features that count toward the verdict (not new columns, not features no test could be computed for)."""
        return [f for f in self.features if f.status not in ("new", "untested")]

    @property
    def n_drifted(self) -> int:
        """Number of drifted features."""
        return sum(f.drifted for f in self.tested)

    @property
    def share(self) -> float:
        """Share of drifted features."""
        return self.n_drifted / len(self.tested) if self.tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when the drifted share reaches `drift_share`."""
        return bool(self.tested) and self.share >= self.drift_share

    @property
    def verdict(self) -> str:
        """One line for people."""
        word = "DRIFT" if self.dataset_drift else "no dataset drift"
        names = ", ".join(f.feature for f in self.tested if f.drifted)
        return (
            f"{word}: {self.n_drifted} of {len(self.tested)} features drifted ({self.share:.0%}, threshold "
            f"{self.drift_share:.0%})" + (f": {names}" if names else "")
        )

    def feature(self, name: str) -> FeatureDrift:
        """The result for one feature."""
        for f in self.features:
            if f.feature == name:
                return f
        raise KeyError(name)

    def to_dict(self, bins: bool = False) -> dict[str, Any]:
        """JSON-able form (histogram counts only when `bins`)."""
        feats = []
        for f in self.features:
            d = asdict(f)
            if not bins:
                d.pop("bins")
            feats.append(d)
        return {
            "kind": "drift",
            "verdict": self.verdict,
            "dataset_drift": self.dataset_drift,
            "drifted": self.n_drifted,
            "features_tested": len(self.tested),
            "share": self.share,
            "drift_share": self.drift_share,
            "reference": self.reference,
            "current": self.current,
            "rows_reference": self.rows_ref,
            "rows_current": self.rows_cur,
            "approximate": self.approximate,
            "notes": self.notes,
            "created_at": self.created_at,
            "features": feats,
        }


def choose_method(kind: str, n_ref: int, n_unique: int) -> str:
    """Evidently's default method for a column (text columns aside)."""
    if n_ref <= SMALL_REFERENCE:
        if kind == "numeric" and n_unique > 5:
            return "ks"
        return "chi2"
    if kind == "numeric" and n_unique > 5:
        return "wasserstein"
    return "js"


# when the chosen statistic could not be computed, the first computed one of these decides (with a note)
FALLBACKS: dict[str, tuple[str, ...]] = {
    "numeric": ("ks", "chi2", "wasserstein", "js", "psi"),
    "categorical": ("chi2", "js", "psi"),
}


def _computed(fd: FeatureDrift, m: str) -> bool:
    """True when the statistic that method `m` decides on was computed (finite) for this feature."""
    v = fd.stats.get(METHODS[m][0])
    return v is not None and bool(np.isfinite(v))


def decide(fd: FeatureDrift, method: str, thresholds: dict[str, float]) -> None:
    """Fill method, score, threshold and drifted from the statistics; a test that was not computed never says ok."""
    m = method
    if m == "auto":
        m = choose_method(fd.kind, fd.n_ref, int(fd.stats.get("n_unique", 0)))
    if m in NUMERIC_ONLY and fd.kind != "numeric":
        m = "chi2" if m == "ks" else "js"
    if not _computed(fd, m):
        alt = next((a for a in FALLBACKS.get(fd.kind, ()) if _computed(fd, a)), None)
        fd.notes.append(
            f"{m} could not be computed here" + (f"; decided by {alt} instead" if alt else "; no test was computed")
        )
        if alt is None:
            fd.method, fd.threshold, fd.score = m, float(thresholds.get(m, METHODS[m][1])), None
            fd.status, fd.drifted = "untested", False
            return
        m = alt
    key, default, side = METHODS[m]
    thr = float(thresholds.get(m, default))
    score = float(fd.stats[key])
    fd.method, fd.threshold, fd.score = m, thr, score
    if m == "ks":
        drifted = score <= thr
    else:
        drifted = score < thr if side == "below" else score >= thr
    if fd.missing_cur - fd.missing_ref >= MISSING_JUMP:
        fd.notes.append(f"missing values rose from {fd.missing_ref:.1%} to {fd.missing_cur:.1%}")
        drifted = True
    fd.drifted = bool(drifted)
    fd.status = "drift" if fd.drifted else "ok"


def default_skip(data: Any, names: list[str], label: str | None = None) -> dict[str, str]:
    """{column: why} for ids, timestamps and the label among `names` of a DataFrame or Profile (left out by default)."""
    from roost.monitor.profile import Profile, column_kind

    out: dict[str, str] = {}
    for name in names:
        if name == label or name.lower() in LABEL_NAMES:
            out[name] = "label"
            continue
        if isinstance(data, Profile):
            cp = data.columns.get(name)
            if cp is None:
                continue
            kind, dtype, rows, share = cp.kind, cp.dtype, cp.count, cp.cardinality / max(cp.count, 1)
        else:
            if name not in data.columns:
                continue
            s = data[name]
            kind, dtype, rows = column_kind(s), str(s.dtype), int(s.notna().sum())
            share = s.nunique() / max(rows, 1) if rows >= ID_MIN_ROWS else 0.0
        if kind == "datetime":
            out[name] = "timestamp"
        elif dtype.startswith(("int", "uint", "Int", "UInt")) and ID_NAME.search(name):
            out[name] = "id"
        elif kind == "categorical" and (ID_NAME.search(name) or (rows >= ID_MIN_ROWS and share >= ID_UNIQUE_SHARE)):
            out[name] = "id"
    return out


def skip_note(skipped: dict[str, str]) -> str:
    """One report note naming the columns left out by default and how to include them."""
    parts = [f"{k} ({v})" for k, v in skipped.items()]
    return (
        "left out by default (ids, timestamps, the label): "
        + ", ".join(parts[:10])
        + ("…" if len(parts) > 10 else "")
        + "; name them in features (--features) to compare them"
    )


def _kind(s: Any) -> str:
    """numeric or categorical (datetimes compare as numbers)."""
    from roost.monitor.profile import column_kind

    k = column_kind(s)
    return "numeric" if k == "datetime" else k


def _numbers(s: Any) -> np.ndarray:
    """A column as float64 with NaN for missing."""
    from roost.monitor.profile import numeric_values

    return numeric_values(s)


def _category_counts(s: Any) -> dict[str, int]:
    """Non-missing category counts."""
    from roost.monitor.profile import category_keys

    vc = category_keys(s).value_counts(dropna=True, sort=False)
    return {str(k): int(v) for k, v in zip(vc.index, vc.to_numpy())}


def _feature(name: str, ref: Any, cur: Any) -> FeatureDrift:
    """Statistics of one feature present on both sides (before the verdict)."""
    from roost.monitor.booleans import align

    ref, cur, read_as_bool = align(ref, cur)
    kind = _kind(ref)
    fd = FeatureDrift(name, kind, "ok", notes=[read_as_bool] if read_as_bool else [])
    n_r, n_c = len(ref), len(cur)
    if kind == "numeric":
        xr = _numbers(ref)
        try:
            xc = _numbers(cur)
        except (TypeError, ValueError):
            fd.notes.append(f"current values are not numbers ({cur.dtype}); compared as categories")
            fd.kind = kind = "categorical"
    if kind == "numeric":
        note_infinite(fd, int(np.isinf(xr).sum()), int(np.isinf(xc).sum()))
        a, b = S.sorted_finite(xr), S.sorted_finite(xc)
        fd.n_ref, fd.n_cur = int(a.size), int(b.size)
        fd.missing_ref = 1 - a.size / n_r if n_r else 0.0
        fd.missing_cur = 1 - b.size / n_c if n_c else 0.0
        if a.size and b.size:
            st = S.numeric_stats(a, b)
            fd.bins = st.pop("bins")
            fd.stats = {k: float(v) for k, v in st.items()}
            if a[0] == a[-1]:
                fd.notes.append(
                    f"constant in the reference (every value is {a[0]:g}): distances are in units "
                    f"of the {S.NORM_FLOOR} floor, not of a spread"
                )
    else:
        cr, cc = _category_counts(ref), _category_counts(cur)
        fd.n_ref, fd.n_cur = sum(cr.values()), sum(cc.values())
        fd.missing_ref = 1 - fd.n_ref / n_r if n_r else 0.0
        fd.missing_cur = 1 - fd.n_cur / n_c if n_c else 0.0
        if fd.n_ref and fd.n_cur:
            st = S.categorical_stats(cr, cc)
            fd.bins = st.pop("bins")
            fd.stats = {k: float(v) for k, v in st.items()}
            if len(cr) == 1:
                fd.notes.append(f"a single category in the reference ({next(iter(cr))!r})")
            new = sorted(set(cc) - set(cr))
            if new:
                fd.notes.append(
                    f"{len(new)} categor{'y' if len(new) == 1 else 'ies'} unseen in the reference: "
                    + ", ".join(map(repr, new[:5]))
                    + ("…" if len(new) > 5 else "")
                )
    return fd


def note_infinite(fd: FeatureDrift, inf_ref: int, inf_cur: int) -> None:
    """Note ±inf values, which the statistics leave out and the missing shares count."""
    if inf_ref or inf_cur:
        fd.notes.append(
            f"infinite values (±inf) left out of the statistics and counted as missing: {inf_ref:,} in the "
            f"reference, {inf_cur:,} in the current data"
        )


def is_untestable(fd: FeatureDrift) -> bool:
    """Mark a feature with no values on one side; True when it was."""
    if fd.n_ref == 0 and fd.n_cur == 0:
        fd.status = "empty"
        fd.notes.append("all values are missing in both reference and current data: nothing to compare")
        return True
    if fd.n_ref == 0:
        fd.status = "empty"
        fd.notes.append("all values are missing in the reference: no baseline to compare with")
        return True
    if fd.n_cur == 0:
        fd.status, fd.drifted = "drift", True
        fd.notes.append(f"all values are missing in the current data (the reference has {fd.n_ref:,} values)")
        return True
    return False


def compare(
    reference: Any,
    current: Any,
    features: list[str] | None = None,
    method: str = "auto",
    thresholds: dict[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    reference_name: str = "reference",
    current_name: str = "current",
    label: str | None = None,
) -> DriftReport:
    """Drift of `features` (default: the reference's columns minus `_` metadata, ids, timestamps and the label)."""
    if method != "auto" and method not in METHODS:
        raise RoostError(f"unknown drift method {method!r}", hint=f"one of auto, {', '.join(METHODS)}")
    thresholds = dict(thresholds or {})
    names = list(features) if features else [str(c) for c in reference.columns if not str(c).startswith("_")]
    report = DriftReport([], drift_share, reference_name, current_name, int(len(reference)), int(len(current)))
    skipped = {} if features else default_skip(reference, names, label)
    if skipped:
        names = [n for n in names if n not in skipped]
        report.notes.append(skip_note(skipped))
    extra = [str(c) for c in current.columns if str(c) not in set(names) | set(skipped) and not str(c).startswith("_")]
    if extra and not features:
        report.notes.append(
            f"columns only in the current data (not compared): {', '.join(extra[:10])}"
            + ("…" if len(extra) > 10 else "")
        )
    if len(reference) == 0 or len(current) == 0:
        raise RoostError(
            f"the {'reference' if len(reference) == 0 else 'current'} data has no rows",
            hint="pick a time range or file that holds data",
        )
    for name in names:
        if name not in reference.columns:
            report.features.append(FeatureDrift(name, "unknown", "new", notes=["not in the reference data"]))
            continue
        if name not in current.columns:
            report.features.append(
                FeatureDrift(
                    name, _kind(reference[name]), "missing", drifted=True, notes=["column missing in the current data"]
                )
            )
            continue
        fd = _feature(name, reference[name], current[name])
        if not is_untestable(fd):
            decide(fd, method, thresholds)
        report.features.append(fd)
    log.info("drift: %s", report.verdict)
    return report
