"""Does the analysed data overlap the model's training data? Same fingerprint as the run read, or shared rows.

A model scored on rows it was trained on looks far better than it is (ROC-AUC 0.93 on training rows, 0.65 on the
held-out slice), so `roost monitor analyze` warns when that happens. Two checks against the model's training run:
the data fingerprint it recorded (`data.fingerprint`, the whole frame the run read) and row overlap — each row
hashed over the columns the analysed data shares with the run's stored training sample (reference.parquet, up
to 100,000 rows of the training split), so a subset, a reordering or a file with extra rows is caught too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

__all__ = ["TrainingOverlap", "row_hashes", "training_overlap"]

WARN_FRACTION = 0.01  # warn when at least this share of the analysed rows are training rows


@dataclass
class TrainingOverlap:
    """How much of the analysed data the model was trained on."""

    run_id: str
    same_fingerprint: bool  # the data is exactly the frame the training run read
    fraction: float  # share of the analysed rows that are training rows (estimated when the sample is partial)
    training_rows_found: int  # rows of the run's training sample that occur in the analysed data
    training_sample_rows: int  # rows in that sample
    training_rows: int | None  # rows of the training split (the run's data.train_rows)
    exact: bool  # the sample is the whole training split, so `fraction` is a count, not an estimate
    columns: list[str]  # the columns hashed

    @property
    def overlaps(self) -> bool:
        """True when the analysed data is, or holds, training rows."""
        return self.same_fingerprint or self.fraction >= WARN_FRACTION

    def message(self) -> str:
        """One line for people: what overlaps, how much, and what to do."""
        how = "the same data (fingerprint) the training run read" if self.same_fingerprint else "training rows"
        est = "" if self.exact else "about "
        return (
            f"the analysed data overlaps the model's training data: {how}; {est}{self.fraction:.1%} of the analysed "
            f"rows are training rows ({self.training_rows_found:,} of {self.training_sample_rows:,} sampled training "
            f"rows found, run {self.run_id[:8]}): metrics on them overstate the model — analyse held-out data "
            "(e.g. `roost monitor analyze --run RUN` uses the run's test split)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with `overlaps` and `message`."""
        return {**asdict(self), "overlaps": self.overlaps, "message": self.message() if self.overlaps else None}


def row_hashes(df: Any, columns: list[str]) -> Any:
    """One uint64 per row over `columns`: numbers compared as float64, times as UTC instants, the rest as text."""
    import numpy as np
    import pandas as pd

    parts = {}
    for c in columns:
        s = df[c].reset_index(drop=True)
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts[c] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            parts[c] = s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
        elif pd.api.types.is_datetime64_any_dtype(s):
            parts[c] = s.astype("datetime64[ns]")
        else:
            parts[c] = s.astype("string")
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(parts), index=False).to_numpy()


def _run_of(model: str) -> dict[str, Any] | None:
    """The registry record of the run that trained `model` (a package folder, name@alias or name/N); None if none."""
    from roost.modelpkg import load_model
    from roost.registry.api import get_run

    run_id = (load_model(model).meta or {}).get("run_id")
    if not run_id:
        return None
    try:
        return get_run(str(run_id))
    except RoostError as e:  # a package copied from another workspace: its run is not here
        log.debug("training run %s of %s not found: %s", run_id, model, e)
        return None


def training_overlap(model: str, data: Any) -> TrainingOverlap | None:
    """How much of `data` (a frame before scoring, or a data source) the model's training run trained on; None
    when the model has no training run here to compare with."""
    from roost.monitor.sources import REFERENCE, load_source, run_dir

    run = _run_of(model)
    if run is None:
        return None
    if not hasattr(data, "columns"):
        data = load_source(str(data)).frame
        if data is None:  # a profile: no rows to compare
            return None
    params = run.get("params") or {}
    same = False
    if params.get("data.fingerprint"):
        from roost.datasets import fingerprint

        same = fingerprint(data) == str(params["data.fingerprint"])
    ref_file = run_dir(run) / REFERENCE
    if not ref_file.is_file():
        if not same:
            return None
        share = float(params.get("data.train_rows") or 0) / max(1, len(data))  # the training split's share
        return TrainingOverlap(run["run_id"], True, share, 0, 0, None, False, [])
    import numpy as np
    import pandas as pd

    ref = pd.read_parquet(ref_file)
    cols = [c for c in map(str, ref.columns) if c in set(map(str, data.columns)) and not c.startswith(("pred_", "_"))]
    n_train = params.get("data.train_rows")
    n_train = int(n_train) if n_train is not None else None
    if not cols or len(data) == 0 or len(ref) == 0:
        return TrainingOverlap(run["run_id"], same, 1.0 if same else 0.0, 0, len(ref), n_train, False, cols)
    ref_h, data_h = np.unique(row_hashes(ref, cols)), row_hashes(data, cols)
    found = int(np.isin(ref_h, data_h).sum())  # distinct sampled training rows that occur in the data
    exact = n_train is not None and len(ref) >= n_train
    if exact:  # the sample is the whole training split: count the analysed rows that are training rows
        fraction = float(np.isin(data_h, ref_h).mean())
    else:  # scale the sampled share up to the training split
        scale = (n_train or len(ref_h)) / len(ref_h)
        fraction = min(1.0, found * scale / len(data))
    return TrainingOverlap(run["run_id"], same, fraction, found, len(ref), n_train, exact, cols)
