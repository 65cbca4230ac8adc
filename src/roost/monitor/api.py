"""The monitoring entry points: drift between any two inputs, and what a training run stores for monitoring."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

from roost.monitor.drift import DRIFT_SHARE, DriftReport, compare
from roost.monitor.sources import EVALUATION, PROFILE, REFERENCE, Source, default_features, load_source

log = logging.getLogger(__name__)
SAMPLE_ROWS = 100_000


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


def drift(reference: Any, current: Any, features: list[str] | None = None, method: str = "auto",
          thresholds: dict[str, float] | None = None, drift_share: float = DRIFT_SHARE, model: str | None = None,
          since: Any = None, until: Any = None) -> DriftReport:
    """Per-feature drift of `current` against `reference` (each a DataFrame, Profile, path, run id or model ref)."""
    from roost.monitor.profile_drift import compare_profiles, compare_to_profile
    from roost.monitor.profile import profile_frame

    ref = as_source(reference, "reference")
    cur = as_source(current, "current", model=model, since=since, until=until)
    notes: list[str] = []
    if not features:
        features, notes = default_features(ref, cur)
    kw = dict(features=features, method=method, thresholds=thresholds, drift_share=drift_share,
              reference_name=ref.name, current_name=cur.name)
    if ref.frame is not None and cur.frame is not None:
        rep = compare(ref.frame, cur.frame, **kw)
    elif ref.profile is not None and cur.frame is not None:
        rep = compare_to_profile(ref.profile, cur.frame, **kw)
    elif ref.profile is not None and cur.profile is not None:
        rep = compare_profiles(ref.profile, cur.profile, **kw)
    else:
        rep = compare_profiles(profile_frame(ref.frame), cur.profile, **kw)
    rep.notes[:0] = ref.notes + cur.notes + notes
    return rep


def sample_rows(df: Any, n: int = SAMPLE_ROWS, seed: int = 0) -> Any:
    """At most n rows drawn uniformly without replacement (all rows, in order, when there are fewer)."""
    if len(df) <= n:
        return df.reset_index(drop=True)
    import numpy as np

    idx = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
    return df.iloc[idx].reset_index(drop=True)


def write_run_reference(directory: str | Path, train_df: Any, eval_df: Any = None, label: str | None = None,
                        predict: Callable[[Any], Any] | None = None, output: str = "probability",
                        rows: int = SAMPLE_ROWS, seed: int = 0) -> list[Path]:
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
