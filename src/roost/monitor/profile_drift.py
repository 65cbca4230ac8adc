"""Drift against a stored profile when no reference sample is available (approximate, from the sketches).

Categorical statistics are exact (category counts are exact below the profile's category cap). Numeric ones are
read off the quantile sketches: CDFs are known at bucket resolution (1% relative), so KS, Wasserstein, PSI and
Jensen–Shannon are close to, not equal to, the sample values; the report says `approximate`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from roost.monitor import stats as S
from roost.monitor.booleans import align_profiles, read_for_profile
from roost.monitor.drift_compute import (
    DRIFT_SHARE,
    DriftReport,
    FeatureDrift,
    decide,
    default_skip,
    is_untestable,
    note_infinite,
    skip_note,
)
from roost.monitor.profile import ColumnProfile, Profile, profile_frame
from roost.monitor.sketch import LogSketch

OTHER = "(other categories)"


def _sketch_counts(sk: LogSketch) -> tuple[np.ndarray, np.ndarray]:
    """(bucket values, counts) of a sketch."""
    return sk.buckets()


def _numeric(r: ColumnProfile, c: ColumnProfile) -> dict[str, Any]:
    """Approximate numeric statistics from two profiles' sketches."""
    assert r.sketch is not None and c.sketch is not None
    vr, cr = _sketch_counts(r.sketch)
    vc, cc = _sketch_counts(c.sketch)
    grid = np.union1d(vr, vc)
    fr, fc = r.sketch.cdf(grid), c.sketch.cdf(grid)
    diff = fr - fc
    d = float(np.max(np.abs(diff)))
    w = float(np.vecdot(np.abs(diff[:-1]), np.diff(grid)))
    std = math.sqrt(r.m2 / r.count) if r.count else 0.0
    inner = np.unique(r.sketch.quantiles(np.linspace(0, 1, S.PSI_BINS + 1)[1:-1], r.min, r.max))
    ref_bins = np.bincount(np.searchsorted(inner, vr, side="right"), weights=cr, minlength=inner.size + 1)
    cur_bins = np.bincount(np.searchsorted(inner, vc, side="right"), weights=cc, minlength=inner.size + 1)
    if r.hll.estimate() > S.DISCRETE_MAX and None not in (r.min, r.max, c.min, c.max):
        lo = min(float(r.min or 0.0), float(c.min or 0.0))  # both set: the columns have values (checked above)
        hi = max(float(r.max or 0.0), float(c.max or 0.0))
        edges = S.sturges_edges(lo, hi, r.count + c.count)
        ra, rb = r.sketch.histogram(edges), c.sketch.histogram(edges)
        bins: dict[str, Any] = {"edges": edges.tolist()}
    else:  # per value, PSI too (as numeric_stats)
        keys, ra, rb = S.aligned_counts(vr, cr, vc, cc)
        bins = {"values": keys.tolist()}
        ref_bins, cur_bins = ra, rb
    bins.update(ref=[int(v) for v in ra], cur=[int(v) for v in rb])
    chi, chi_p, dof = S.chi2_homogeneity(np.asarray(ra, dtype=np.int64), np.asarray(rb, dtype=np.int64))
    return {
        "chi2": chi,
        "chi2_pvalue": chi_p,
        "chi2_dof": dof,
        "ks": d,
        "ks_pvalue": S.ks_pvalue_asymp(d, r.count, c.count),
        "wasserstein": w,
        "wasserstein_norm": S.wasserstein_norm(w, std),
        "psi": S.psi(ref_bins, cur_bins),
        "js": S.js_distance(ra, rb),
        "ref_std": std,
        "n_unique": r.hll.merge(c.hll).estimate(),
        "bins": bins,
    }


def _categories(p: ColumnProfile) -> dict[str, int]:
    """Category counts, the folded tail as one bucket."""
    out = dict(p.categories)
    if p.other:
        out[OTHER] = out.get(OTHER, 0) + p.other
    return out


def _feature(name: str, r: ColumnProfile, c: ColumnProfile | None) -> FeatureDrift:
    """One feature from two profiles."""
    kind = "numeric" if r.kind in ("numeric", "datetime") else "categorical"
    if c is None:
        return FeatureDrift(name, kind, "missing", drifted=True, notes=["column missing in the current data"])
    r, c, read_as_bool = align_profiles(r, c)
    kind = "numeric" if r.kind in ("numeric", "datetime") else "categorical"
    fd = FeatureDrift(name, kind, "ok", n_ref=r.count, n_cur=c.count, notes=[read_as_bool] if read_as_bool else [])
    fd.missing_ref = 1 - r.count / r.rows if r.rows else 0.0
    fd.missing_cur = 1 - c.count / c.rows if c.rows else 0.0
    note_infinite(fd, r.infinite, c.infinite)
    if not (r.count and c.count):
        return fd
    if c.kind != r.kind and (kind == "numeric" or c.kind != "categorical"):
        fd.notes.append(f"current values are {c.kind}, the reference's are {r.kind}: not comparable")
        fd.status, fd.drifted = "drift", True
        return fd
    if kind == "numeric":
        st = _numeric(r, c)
        if r.min == r.max:
            fd.notes.append(f"constant in the reference (every value is {r.min:g})")
    else:
        st = S.categorical_stats(_categories(r), _categories(c))
        if r.truncated or c.truncated:
            fd.notes.append(f"more than {len(r.categories)} categories: the rarest are pooled as {OTHER!r}")
    fd.bins = st.pop("bins")
    fd.stats = {k: float(v) for k, v in st.items()}
    return fd


def compare_profiles(
    reference: Profile,
    current: Profile,
    features: list[str] | None = None,
    method: str = "auto",
    thresholds: dict[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    reference_name: str = "reference profile",
    current_name: str = "current",
    label: str | None = None,
) -> DriftReport:
    """Approximate drift between two profiles (same columns as `compare`)."""
    names = list(features) if features else [n for n in reference.columns if not n.startswith("_")]
    report = DriftReport([], drift_share, reference_name, current_name, reference.rows, current.rows, approximate=True)
    report.notes.append(
        "reference is a profile (no sample): numeric statistics are read off quantile sketches "
        "(1% relative bucket width) and are approximate"
    )
    skipped = {} if features else default_skip(reference, names, label)
    if skipped:
        names = [n for n in names if n not in skipped]
        report.notes.append(skip_note(skipped))
    for name in names:
        r = reference.columns.get(name)
        if r is None:
            report.features.append(FeatureDrift(name, "unknown", "new", notes=["not in the reference profile"]))
            continue
        fd = _feature(name, r, current.columns.get(name))
        if fd.status == "ok" and not is_untestable(fd):
            decide(fd, method, dict(thresholds or {}))
        report.features.append(fd)
    return report


def compare_to_profile(
    reference: Profile,
    current: Any,
    features: list[str] | None = None,
    method: str = "auto",
    thresholds: dict[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    reference_name: str = "reference profile",
    current_name: str = "current",
    label: str | None = None,
) -> DriftReport:
    """Approximate drift of a current DataFrame against a reference profile."""
    names = list(features) if features else [n for n in reference.columns if not n.startswith("_")]
    cols = [n for n in names if n in current.columns]
    read = {n: read_for_profile(reference.columns[n], current[n]) for n in cols if n in reference.columns}
    read = {n: v for n, v in read.items() if v is not current[n]}
    cur = profile_frame(current.assign(**read) if read else current, cols)  # assign: the caller's frame is kept
    cur.rows = int(len(current))
    skipped = {} if features else default_skip(reference, names, label)
    rep = compare_profiles(
        reference,
        cur,
        [n for n in names if n not in skipped],
        method=method,
        thresholds=thresholds,
        drift_share=drift_share,
        reference_name=reference_name,
        current_name=current_name,
    )
    if skipped:
        rep.notes.append(skip_note(skipped))
    return rep
