"""The monitoring entry points: drift between any two inputs, and what a training run stores for monitoring."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.monitor.drift_compute import DRIFT_SHARE, METHODS, DriftReport, compare, default_skip, skip_note
from roost.monitor.sources import EVALUATION, PROFILE, REFERENCE, Source, default_features, from_run, load_source

log = logging.getLogger(__name__)
SAMPLE_ROWS = 100_000
JS_MAX = math.sqrt(math.log(2))  # the largest Jensen–Shannon distance in natural-log units (disjoint supports)


def as_source(x: Any, role: str, model: str | None = None, since: Any = None, until: Any = None) -> Source:
    """A Source from a spec string, a DataFrame, a Profile or a Source."""
    from roost.monitor.profile import Profile

    if isinstance(x, Source):
        return x
    if isinstance(x, Profile):
        return Source(f"{role} profile", profile=x)
    if hasattr(x, "columns") and hasattr(x, "iloc"):
        return Source(f"{role} frame", frame=x)
    return load_source(str(x), want="reference", model=model, since=since, until=until)


def check_rules(method: str, thresholds: dict[str, float] | None, drift_share: float) -> None:
    """Refuse drift rules that could never (or would always) fire: unknown methods, NaN, out-of-range values."""
    for m, v in (thresholds or {}).items():
        if m not in METHODS:
            raise RoostError(f"threshold for unknown drift method {m!r}", hint=f"one of {', '.join(METHODS)}")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise RoostError(f"threshold for {m} is not a number: {v!r}", hint="pass a number") from None
        pvalue = METHODS[m][2] == "below"
        if not math.isfinite(x) or x < 0 or (pvalue and x > 1 and method in ("auto", m)):
            what = "a p-value between 0 and 1" if pvalue else "a finite number ≥ 0"
            raise RoostError(f"threshold for {m} is {v!r}; it must be {what}", hint=f"the default is {METHODS[m][1]}")
        if m == "js" and x > JS_MAX and method in ("auto", m):
            raise RoostError(
                f"threshold for js is {v!r}: the Jensen–Shannon distance (natural log) never exceeds {JS_MAX:.4f}, "
                "so that rule could never fire",
                hint=f"the default is {METHODS[m][1]}",
            )
    try:
        share = float(drift_share)
    except (TypeError, ValueError):
        share = math.nan
    if not (0 < share <= 1):
        raise RoostError(
            f"drift_share is {drift_share!r}; it must be in (0, 1] (the share of drifted features that is dataset "
            "drift)",
            hint=f"the default is {DRIFT_SHARE}",
        )


def drift(
    reference: Any,
    current: Any,
    features: list[str] | None = None,
    method: str = "auto",
    thresholds: dict[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    model: str | None = None,
    since: Any = None,
    until: Any = None,
) -> DriftReport:
    """Per-feature drift of `current` against `reference` (each a DataFrame, Profile, path, run id or model ref)."""
    from roost.monitor.logfiles import parse_time
    from roost.monitor.profile import profile_frame
    from roost.monitor.profile_drift import compare_profiles, compare_to_profile

    check_rules(method, thresholds, drift_share)
    parse_time(since, "--since")  # a bad time is an error even when the current data are not request logs
    parse_time(until, "--until")
    ref = as_source(reference, "reference")
    cur = as_source(current, "current", model=model, since=since, until=until)
    notes: list[str] = []
    label = ref.label or cur.label
    if not features:
        features, notes = default_features(ref, cur)
        if features is not None and not (ref.features or cur.features):  # request logs: the columns they share
            skipped = default_skip(ref.frame if ref.frame is not None else ref.profile, features, label)
            features = [f for f in features if f not in skipped]
            notes += [skip_note(skipped)] if skipped else []
    if ref.frame is not None and cur.frame is not None:
        rep = compare(ref.frame, cur.frame, features, method, thresholds, drift_share, ref.name, cur.name, label)
    elif ref.profile is not None and cur.frame is not None:
        rep = compare_to_profile(
            ref.profile, cur.frame, features, method, thresholds, drift_share, ref.name, cur.name, label
        )
    else:
        ref_profile = ref.profile if ref.profile is not None else profile_frame(ref.frame)
        rep = compare_profiles(
            ref_profile, cur.profile, features, method, thresholds, drift_share, ref.name, cur.name, label
        )
    rep.notes[:0] = ref.notes + cur.notes + notes
    return rep


def sample_rows(df: Any, n: int = SAMPLE_ROWS, seed: int = 0) -> Any:
    """At most n rows drawn uniformly without replacement (all rows, in order, when there are fewer)."""
    if len(df) <= n:
        return df.reset_index(drop=True)
    import numpy as np

    idx = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
    return df.iloc[idx].reset_index(drop=True)


def write_run_reference(
    directory: str | Path,
    train_df: Any,
    eval_df: Any = None,
    label: str | None = None,
    predict: Callable[[Any], Any] | None = None,
    output: str = "probability",
    rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> list[Path]:
    """Write profile.json, reference.parquet and evaluation.parquet (see roost.monitor.sources) into `directory`."""
    import numpy as np

    from roost.monitor.profile import profile_frame

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = [profile_frame(train_df, source="training data").save(d / PROFILE)]
    for name, df in ((REFERENCE, train_df), (EVALUATION, eval_df)):
        if df is None or len(df) == 0:
            continue
        part = sample_rows(df, rows, seed).copy()
        if predict is not None:
            features = part.drop(columns=[label]) if label and label in part.columns else part
            out = np.asarray(predict(features))
            if out.ndim == 1:
                part[f"pred_{output}"] = out
        part.to_parquet(d / name, index=False)
        written.append(d / name)
    log.info("monitoring reference written: %s", ", ".join(p.name for p in written))
    return written


def log_report(report: Any, model: str | None = None, experiment: str | None = None, html: str | None = None) -> str:
    """Record a drift report as a monitor run (experiment `monitor/<model>`; see roost.monitor.record)."""
    from roost.monitor.record import record_drift

    return record_drift(report, model, html=html, experiment=experiment)


def latest_drift(model: str) -> dict[str, Any] | None:
    """The newest logged drift result for a model name ({'run_id', 'verdict', 'share', 'when'}), or None."""
    from roost.registry.api import search_runs

    q = f"tags.roost.monitor.model = '{model}' and tags.roost.monitor.check = 'drift'"
    runs = search_runs(q, order_by="start_time DESC", limit=1, warn_unknown=False)
    if not runs:
        return None
    r = runs[0]
    return {
        "run_id": r["run_id"],
        "verdict": r["tags"].get("roost.monitor.verdict"),
        "share": r["metrics"].get("drift_share"),
        "when": r.get("start_time"),
        "reference": r["tags"].get("roost.monitor.reference"),
        "current": r["tags"].get("roost.monitor.current"),
    }


def log_skew(report: Any, model: str | None = None, experiment: str | None = None, html: str | None = None) -> str:
    """Record a skew report as a monitor run (experiment `monitor/<model>`; see roost.monitor.record)."""
    from roost.monitor.record import record_skew

    return record_skew(report, model, html=html, experiment=experiment)


def _rows(x: Any) -> Any:
    """A data frame as is, or the rows of a data source (file/glob, data set, request-log folder)."""
    if not isinstance(x, (str, Path)):
        return x
    src = load_source(str(x))
    if src.frame is None:
        raise RoostError(f"{x} is a profile, not rows", hint="pass a data file")
    return src.frame


def analysis_frame(
    run: str | None = None,
    model: str | None = None,
    data: Any = None,
    labels: Any = None,
    on: list[str] | None = None,
    label: str | None = None,
) -> tuple[Any, str, str]:
    """(labelled frame with scores, source name, label column) to pass to `analyze`, as `roost monitor analyze` does.

    `run` alone: the run's stored evaluation set. Otherwise `data` (a source or a frame), with delayed `labels`
    joined on `on` (default `_request_id`, `_row`), scored by `model` (binary and regression models add
    `pred_probability` / `pred_prediction`); the label column is `label`, else the model's, else the run's.
    """
    from roost.monitor.analysis import join_labels

    if run is not None and data is None:
        src = from_run(run, want="evaluation")
        return src.frame, src.name, label or src.label or ""
    if data is None:
        raise RoostError("nothing to analyse", hint="pass --run RUN, or MODEL --data D, or --data LOGS --labels LABELS")
    frame = _rows(data)
    if labels is not None:
        frame = join_labels(frame, _rows(labels), list(on or ["_request_id", "_row"]))
    if model is not None:
        from roost.modelpkg import load_model

        pred = load_model(model)
        out = "probability" if pred.task == "binary" else "prediction"
        if pred.task != "multiclass":
            frame = frame.copy()
            frame[f"pred_{out}"] = pred.predict(frame)
        label = label or pred.signature.get("label")
    if not label:
        raise RoostError("which column is the label?", hint="pass --label COLUMN")
    return frame, str(data) if isinstance(data, (str, Path)) else "data frame", label
