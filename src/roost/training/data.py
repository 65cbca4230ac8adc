"""Load, check and split the training table (errors before any run starts)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from roost.errors import ConfigError, RoostError
from roost.training.config import SplitConfig, TrainConfig
from roost.training.preprocess import infer_task

log = logging.getLogger(__name__)


def load_frame(cfg: TrainConfig) -> pd.DataFrame:
    """Load `cfg.data.source` through roost.datasets, optionally sampled; errors on an empty table."""
    from roost.datasets import load

    where = cfg.data.source if cfg.data.source is not None else cfg.data.entities
    try:
        df = load(where)
    except RoostError:
        raise
    except (ValueError, OSError) as exc:  # unreadable files: pandas/pyarrow errors
        raise RoostError(
            f"cannot read {where!r}: {str(exc).splitlines()[0] if str(exc) else exc}",
            hint="check the file is a non-empty Parquet or CSV table",
        ) from None
    if df is None or len(df) == 0 or len(df.columns) == 0:
        raise RoostError(f"data source {where!r} has no rows", hint="point `data:` at a non-empty table")
    if cfg.data.entities is not None:  # the same point-in-time join serving's online features match
        from roost.features import training_set

        df = training_set(df, list(cfg.data.features or []), event_time=cfg.data.event_time)
    if cfg.data.sample and cfg.data.sample < len(df):
        df = df.sample(n=cfg.data.sample, random_state=cfg.split.seed).sort_index()
    return df.reset_index(drop=True)


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python value it holds (so messages say 1, not np.int64(1))."""
    return v.item() if isinstance(v, np.generic) else v


def check_label(df: pd.DataFrame, label: str, task: str | None) -> str:
    """Validate the label column and return the task (inferred when None)."""
    if label not in df.columns:
        from roost.errors import closest

        near = closest(label, [str(c) for c in df.columns])
        raise RoostError(
            f"label column {label!r} not in the data",
            hint=(f"did you mean {near!r}? " if near else "") + f"available columns: {', '.join(map(str, df.columns))}",
        )
    y = df[label]
    n_nan = int(y.isna().sum())
    if n_nan:
        raise RoostError(
            f"label {label!r} has {n_nan} missing value(s) of {len(y)}", hint="drop or fill those rows before training"
        )
    n_cls = int(y.nunique())
    if n_cls < 2:
        raise RoostError(
            f"label {label!r} has a single value ({_plain(y.iloc[0])!r}); nothing to learn",
            hint="check the label column or the data filter",
        )
    inferred = infer_task(y)
    task = task or inferred
    if task == "binary" and n_cls != 2:
        raise ConfigError(
            f"task: binary needs a label with 2 values, {label!r} has {n_cls}",
            hint="use task: multiclass or regression",
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise ConfigError(
            f"task: regression needs a numeric label, {label!r} is {y.dtype}", hint="use task: binary or multiclass"
        )
    return task


def _ts(value: str, col: pd.Series) -> Any:
    """A split boundary comparable with the time column (timezone-aware when the column is)."""
    if not pd.api.types.is_datetime64_any_dtype(col):
        return type(col.iloc[0])(value) if pd.api.types.is_numeric_dtype(col) else value
    ts = pd.Timestamp(value)
    tz = getattr(col.dt, "tz", None)
    if tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    elif tz is None and ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return ts


def split(df: pd.DataFrame, sc: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test): random and seeded, or by time (test = at/after test_start, val = latest training rows)."""
    n = len(df)
    if n < 10:
        raise RoostError(
            f"only {n} rows; need at least 10 to split train/validation/test", hint="use a larger data set"
        )
    if sc.method == "random":
        rng = np.random.default_rng(sc.seed)
        perm = rng.permutation(n)
        n_test = max(1, int(round(n * sc.test_size)))
        test_idx, rest = perm[:n_test], perm[n_test:]
        n_val = max(1, int(round(len(rest) * sc.val_size)))
        val_idx, tr_idx = rest[:n_val], rest[n_val:]
        return df.iloc[np.sort(tr_idx)], df.iloc[np.sort(val_idx)], df.iloc[np.sort(test_idx)]
    col = sc.column
    assert col is not None
    if col not in df.columns:
        raise ConfigError(f"split.column: {col!r} not in the data", hint=f"available columns: {list(df.columns)}")
    order = df[col].sort_values(kind="stable").index
    d = df.loc[order]
    t = d[col]
    if sc.test_start:
        test_mask = (t >= _ts(sc.test_start, t)).to_numpy()
    else:
        test_mask = np.arange(n) >= n - max(1, int(round(n * sc.test_size)))
    rest = d[~test_mask]
    if sc.val_start:
        val_mask = (rest[col] >= _ts(sc.val_start, t)).to_numpy()
    else:
        val_mask = np.arange(len(rest)) >= len(rest) - max(1, int(round(len(rest) * sc.val_size)))
    train, val, test = rest[~val_mask], rest[val_mask], d[test_mask]
    for name, part in (("training", train), ("validation", val), ("test", test)):
        if len(part) == 0:
            raise ConfigError(f"split: the {name} part is empty", hint="move split.test_start / split.val_start")
    return train, val, test
