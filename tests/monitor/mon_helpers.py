"""Shared test data for monitor and responsible tests: engagement rows and small trained model packages."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

FEATURES = ["hour", "position", "clicks_7d", "price", "quality_score", "device", "age_group", "gender", "category"]
LABEL = "clicked"


def engagement(rows: int = 6000, seed: int = 0) -> pd.DataFrame:
    """Engagement rows (PIT-joined) with the features above, the label and event_time."""
    from roost.datasets.engagement import make_engagement_flat

    df = make_engagement_flat(rows, seed)
    return df[["event_time", *FEATURES, LABEL]].reset_index(drop=True)


def build_package(directory: Path, model_type: str, df: pd.DataFrame, **params: Any) -> Path:
    """Fit a small binary model on `df` and write its package (with native checkpoint) to `directory`."""
    from roost.training.models import make_model

    X, y = df[FEATURES], df[LABEL]
    cut = int(len(df) * 0.8)
    m = make_model(model_type, "binary", **params).fit(X.iloc[:cut], y.iloc[:cut], X.iloc[cut:], y.iloc[cut:])
    return m.save_package(directory, X.head(200), label=LABEL)


def fake_served_model(name: str = "eng", version: str = "1") -> Any:
    """What roost.serve.reqlog.RequestLogger needs to know about a served model."""
    pkg = SimpleNamespace(
        inputs=[SimpleNamespace(name=f) for f in FEATURES], outputs=[SimpleNamespace(name="probability")]
    )
    return SimpleNamespace(name=name, version=version, package=pkg)


def log_requests(directory: Path, df: pd.DataFrame, scores: Any, batch: int = 500) -> None:
    """Write `df` as served requests through the real request logger (Parquet under <model>/<date>/)."""
    import numpy as np

    from roost.modelpkg.convert import to_input
    from roost.serve.reqlog import RequestLogger

    model = fake_served_model()
    dtypes = {f: ("string" if df[f].dtype.kind not in "biuf" else "float32") for f in FEATURES}
    rl = RequestLogger(directory, rate=1.0, flush_s=30)
    try:
        for s in range(0, len(df), batch):
            part = df.iloc[s : s + batch]
            inputs = {f: to_input(part[f].to_numpy(), dtypes[f]) for f in FEATURES}
            rl.maybe_log(model, "v2", inputs, {"probability": np.asarray(scores[s : s + batch], np.float32)}, 0.001)
    finally:
        rl.close()
