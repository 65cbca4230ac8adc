"""Monitoring fixtures for the UI tests: a materialised feature view, request logs with planted skew, a model.

The scenario is tests/monitor/test_mon_skew.py's planted one (same rows, same request-log contract), so the
expected numbers follow from the rows, not from the code under test.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
T1, T2 = T0 + 40 * MIN, T0 + 60 * MIN  # materialised at T1, served at T2
TS = pa.timestamp("us", tz="UTC")
DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("uv_src", path="data/uv.parquet", event_time="et", created_time="ct")
uv = FeatureView("uv", user, src, ttl=timedelta(minutes=30),
                 fields={"v_int": "int64", "v_f": "float64", "v_s": "string"})
"""
FIELDS = {"v_int": "int64", "v_f": "float64", "v_s": "string"}  # as DEFS declares them
TTL_SECONDS = 30 * 60
REFS = {"clicks": "uv:v_int", "score": "uv:v_f", "cat": "uv:v_s"}
ROWS = [
    {"user_id": 0, "et": T0 + 35 * MIN, "v_int": 1, "v_f": 0.5, "v_s": "x"},
    {"user_id": 1, "et": T0 + 35 * MIN, "v_int": 2, "v_f": 1.5, "v_s": "y"},
    {"user_id": 1, "et": T0 + 50 * MIN, "v_int": 3, "v_f": 2.5, "v_s": "z"},
    {"user_id": 2, "et": T0 + 20 * MIN, "v_int": 4, "v_f": 3.5, "v_s": "x"},
    {"user_id": 3, "et": T0 + 45 * MIN, "v_int": 5, "v_f": 4.5, "v_s": "y"},
    {"user_id": 4, "et": T0 + 39 * MIN, "v_int": 6, "v_f": 5.5, "v_s": "z"},
]
# the planted skew of `score` (uv:v_f), served at T2 to users 1-4 (version 1) and 0 (version 2): user 1 stale,
# 2 expired (extra online), 3 missing online, 4 tampered: 4 of 5 values differ
SCORE_MISMATCH_RATE = 4 / 5


def setup_view(root: Path) -> None:
    """Write the source rows and the definitions, apply them."""
    from roost.features import apply

    (root / "data").mkdir(exist_ok=True)
    cols = {
        "user_id": pa.array([r["user_id"] for r in ROWS], pa.int64()),
        "et": pa.array([r["et"] for r in ROWS], TS),
        "ct": pa.array([None] * len(ROWS), TS),
        "v_int": pa.array([r["v_int"] for r in ROWS], pa.int64()),
        "v_f": pa.array([r["v_f"] for r in ROWS], pa.float64()),
        "v_s": pa.array([r["v_s"] for r in ROWS], pa.string()),
    }
    pq.write_table(pa.table(cols), root / "data" / "uv.parquet")
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "defs.py").write_text(DEFS)
    apply()


def _serve(ids: list[int], at: datetime, version: str, first: int) -> dict[str, list[Any]]:
    """Log columns for requests by `ids`, filled from the online store as the server fills them."""
    from roost.features import open_online_store

    reader = open_online_store().reader("uv", {"user_id": "int64"}, FIELDS, with_time=True)
    v_int, v_f, v_s, et = reader.read([list(ids)])
    n = len(ids)
    return {
        "_ts": [at] * n,
        "_request_id": [f"r{first + i}" for i in range(n)],
        "_model": ["m"] * n,
        "_version": [version] * n,
        "_protocol": ["v2"] * n,
        "_latency_ms": [1.0] * n,
        "_row": [0] * n,
        "user_id": list(ids),
        "clicks": [math.nan if v is None else float(v) for v in v_int],
        "score": [math.nan if v is None else float(v) for v in v_f],
        "cat": ["" if v is None else v for v in v_s],
        "_fs_event_time.uv": [None if t is None else datetime.fromtimestamp(t / 1e6, UTC) for t in et],
    }


def write_log(folder: Path, cols: dict[str, list[Any]], name: str = "000000-1-00000.parquet") -> Path:
    """One request-log file of model `m` with the contract's column types and metadata."""
    types = {
        "_ts": TS,
        "_request_id": pa.string(),
        "_model": pa.string(),
        "_version": pa.string(),
        "_protocol": pa.string(),
        "_latency_ms": pa.float64(),
        "_row": pa.int64(),
        "user_id": pa.int64(),
        "clicks": pa.float32(),
        "score": pa.float32(),
        "cat": pa.string(),
        "_fs_event_time.uv": TS,
        "_fs_created_time.uv": TS,
        "pred_probability": pa.float32(),
    }
    n = len(cols["_ts"])
    cols = {**cols, "pred_probability": [0.5] * n, "_fs_created_time.uv": [None] * n}
    tbl = pa.table({k: pa.array(v, types[k]) for k, v in cols.items()})
    tbl = tbl.replace_schema_metadata(
        {"roost.feature_refs": json.dumps(REFS), "roost.entities": json.dumps(["user_id"])}
    )
    day = folder / "m" / cols["_ts"][0].strftime("%Y-%m-%d")
    day.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, day / name)
    return day / name


def planted(root: Path, logs: Path) -> None:
    """Materialise the view at T1 and log requests at T2 with the planted skew (see SCORE_MISMATCH_RATE)."""
    from roost.features import materialize

    setup_view(root)
    materialize(start=T0 - timedelta(days=1), end=T1)
    v1 = _serve([1, 2, 3, 4], T2, "1", 0)
    v1["score"][3] += 0.25
    v2 = _serve([0], T2, "2", 100)
    write_log(logs, {k: v1[k] + v2[k] for k in v1})


def register_model(tmp_path: Path, name: str = "m") -> None:
    """Register a model called `name` (a bare package folder) so that its page exists."""
    import roost

    pkg = tmp_path / f"pkg-{name}"
    pkg.mkdir(exist_ok=True)
    (pkg / "roost-model.yaml").write_text("framework: onnx\nmetrics:\n  auc: 0.8\n")
    roost.register_model(None, name, str(pkg))


def drift_frames(shift: float, n: int = 400, seed: int = 0) -> tuple[Any, Any]:
    """(reference, current) frames of two numeric and one categorical feature; `current` shifted by `shift`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n), "c": rng.choice(["x", "y"], n)})
    cur = pd.DataFrame(
        {"a": rng.normal(shift, 1, n), "b": rng.normal(5, 2, n), "c": rng.choice(["x", "y"], n, p=[0.5, 0.5])}
    )
    return ref, cur


def page_charts(html: str, element_id: str) -> list[dict[str, Any]]:
    """The chart payloads a page put in `<div id=element_id data-charts='...'>`."""
    import html as h
    import re

    m = re.search(rf"id=\"{element_id}\" data-charts='([^']*)'", html)
    assert m, f"no #{element_id} charts in the page"
    return json.loads(h.unescape(m.group(1)))
