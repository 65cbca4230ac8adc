"""Shadow comparison summary: agreement, score-difference quantiles and latency per (model, primary, shadow) pair.

Reads the Parquet rows `roost serve --shadow` writes under ``<request-log dir>/shadow/<model>/<YYYY-MM-DD>/``
(one row per predicted row: both scores, ``abs_diff``, ``agree``, both latencies) and can gate a promotion: the
report fails when a pair's agreement is below `min_agreement` or its `quantile` of ``abs_diff`` above `max_diff`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

SHADOW_DIR = "shadow"  # the folder name roost.serve.rollout writes under the request-log directory
QUANTILES = (0.5, 0.9, 0.99)


@dataclass
class ShadowPair:
    """The comparison of one primary version with one shadow version of a model."""

    model: str
    primary_version: str
    shadow_version: str
    requests: int
    rows: int
    agreement: float | None  # share of rows whose labels agree (None: no labels, e.g. regression)
    abs_diff: dict[str, float]  # p50, p90, p99, max of the per-row absolute score difference
    primary_latency_ms: dict[str, float]  # p50, p99 over requests
    shadow_latency_ms: dict[str, float]
    failed: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass
class ShadowReport:
    """Every (model, primary, shadow) pair found, and whether the gate passed."""

    pairs: list[ShadowPair]
    files: int
    failed: bool
    verdict: str
    skipped_files: list[dict[str, str]] = field(default_factory=list)  # unreadable files: {file, reason}
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return asdict(self)


def _files(path: Path, model: str | None) -> tuple[Path, list[Path]]:
    """(folder, complete comparison files) under a request-log folder, its shadow/ folder or one model's folder."""
    from roost.monitor.logfiles import find

    find(path, None, "shadow-comparison folder")  # a file, a missing or an unreadable folder: named here
    root = path / SHADOW_DIR if (path / SHADOW_DIR).is_dir() else path
    if model is not None:
        root = root / model
    if not root.is_dir():
        raise RoostError(
            f"no shadow comparisons under {root}",
            hint="serve with --shadow MODEL[=PCT] and pass its --log-dir (or <workspace>/.roost/request_logs)",
        )
    return root, find(root, None, "shadow-comparison folder")


def _q(values: Any, qs: tuple[float, ...], with_max: bool = True) -> dict[str, float]:
    """Named quantiles (p50, p99, ...) and the max of a numeric array (NaN-free)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {}
    out = {f"p{round(q * 100):d}": float(np.quantile(arr, q)) for q in qs}
    if with_max:
        out["max"] = float(arr.max())
    return out


def shadow_summary(
    path: str | Path,
    model: str | None = None,
    since: str | None = None,
    until: str | None = None,
    min_agreement: float | None = None,
    max_diff: float | None = None,
    quantile: float = 0.99,
) -> ShadowReport:
    """Summarise shadow comparisons; fails when agreement < min_agreement or the diff quantile > max_diff."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roost.monitor import logfiles

    lo, hi = logfiles.parse_time(since, "--since"), logfiles.parse_time(until, "--until")
    root, files = _files(Path(path).expanduser(), model)
    if not files:
        raise RoostError(f"no shadow comparison files under {path}", hint="the server writes them every few seconds")
    checked = logfiles.check(files, root)
    frames = []
    for f in list(checked.files):
        try:
            frames.append(pq.read_table(f).to_pandas())
        except (pa.ArrowException, OSError) as exc:  # a damaged page behind a whole footer
            checked.skip(f, exc)
    if not frames:
        raise logfiles.all_unreadable(path, checked)
    df = pd.concat(frames, ignore_index=True)
    if lo is not None:
        df = df[df["_ts"] >= lo]
    if hi is not None:
        df = df[df["_ts"] < hi]
    pairs = []
    for (name, pv, sv), g in df.groupby(["model", "primary_version", "shadow_version"], sort=True):
        per_request = g.drop_duplicates("_request_id")
        agree = g["agree"].dropna() if "agree" in g else pd.Series([], dtype=bool)
        pair = ShadowPair(
            model=str(name),
            primary_version=str(pv),
            shadow_version=str(sv),
            requests=int(per_request.shape[0]),
            rows=int(g.shape[0]),
            agreement=float(agree.astype(bool).mean()) if len(agree) else None,
            abs_diff=_q(g["abs_diff"], QUANTILES),
            primary_latency_ms=_q(per_request["primary_latency_ms"], (0.5, 0.99), with_max=False),
            shadow_latency_ms=_q(per_request["shadow_latency_ms"], (0.5, 0.99), with_max=False),
        )
        if min_agreement is not None and pair.agreement is not None and pair.agreement < min_agreement:
            pair.reasons.append(f"agreement {pair.agreement:.2%} < {min_agreement:.2%}")
        if max_diff is not None:
            dq = _q(g["abs_diff"], (quantile,), with_max=False)
            value = next(iter(dq.values()), float("nan"))
            if not value <= max_diff:
                pair.reasons.append(f"p{quantile * 100:g} |score difference| {value:.4g} > {max_diff:g}")
        pair.failed = bool(pair.reasons)
        pairs.append(pair)
    gated = min_agreement is not None or max_diff is not None
    failed = any(p.failed for p in pairs) or (gated and not pairs)  # a gate never passes on no evidence
    if not pairs:
        verdict = "no shadow comparisons in the selected time range"
    elif failed:
        verdict = "shadow gate failed: " + "; ".join(
            f"{p.model} {p.primary_version}->{p.shadow_version}: {', '.join(p.reasons)}" for p in pairs if p.failed
        )
    else:
        verdict = f"shadow gate passed ({sum(p.requests for p in pairs):,} mirrored requests)"
    note = checked.note()
    return ShadowReport(
        pairs=pairs,
        files=len(checked.files),
        failed=failed,
        verdict=verdict,
        skipped_files=checked.skipped_dicts(),
        notes=[note] if note else [],
    )
