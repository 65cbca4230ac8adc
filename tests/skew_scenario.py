"""The planted skew scenario, shared by tests/monitor (roost.monitor.skew) and tests/ui (the monitoring pages): a
materialised feature view, request logs written as the server writes them (the request-log contract in
docs/skew.md), with known stale, expired, missing and tampered values, so expected numbers follow from the rows, not
from the code under test.
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
TTL = timedelta(minutes=30)
TTL_SECONDS = 30 * 60  # TTL in seconds
T1, T2 = T0 + 40 * MIN, T0 + 60 * MIN  # the planted scenario: materialised at T1, served at T2
TS = pa.timestamp("us", tz="UTC")
DEFS = """from datetime import timedelta
from roost.features import Entity, Source, FeatureView

user = Entity("user", {"user_id": "int64"})
src = Source("uv_src", path="data/uv.parquet", event_time="et", created_time="ct")
uv = FeatureView("uv", user, src, ttl=timedelta(minutes=30),
                 fields={"v_int": "int64", "v_f": "float64", "v_s": "string"})
"""
REFS = {"clicks": "uv:v_int", "score": "uv:v_f", "cat": "uv:v_s"}
FIELDS = {"v_int": "int64", "v_f": "float64", "v_s": "string"}  # as DEFS declares them

# the feature rows of the planted scenario (event times relative to T0)
PLANTED_ROWS = [
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


def setup_view(root: Path, rows: list[dict[str, Any]]) -> None:
    """Write the source rows and the definitions into the current workspace and apply them."""
    from roost.features import apply

    (root / "data").mkdir(exist_ok=True)
    cols = {
        "user_id": pa.array([r["user_id"] for r in rows], pa.int64()),
        "et": pa.array([r["et"] for r in rows], TS),
        "ct": pa.array([r.get("ct") for r in rows], TS),
        "v_int": pa.array([r.get("v_int") for r in rows], pa.int64()),
        "v_f": pa.array([r.get("v_f") for r in rows], pa.float64()),
        "v_s": pa.array([r.get("v_s") for r in rows], pa.string()),
    }
    pq.write_table(pa.table(cols), root / "data" / "uv.parquet")
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "defs.py").write_text(DEFS)
    apply()


def serve_rows(ids: list[int], at: datetime, version: str = "1", first_request: int = 0) -> dict[str, list[Any]]:
    """Log columns for requests by `ids` at `at`, as the server fills them from the online store."""
    from roost.features import open_online_store

    reader = open_online_store().reader("uv", {"user_id": "int64"}, FIELDS, with_time=True)
    v_int, v_f, v_s, et = reader.read([list(ids)])
    n = len(ids)
    return {
        "_ts": [at] * n,
        "_request_id": [f"r{first_request + i}" for i in range(n)],
        "_model": ["m"] * n,
        "_version": [version] * n,
        "_protocol": ["v2"] * n,
        "_latency_ms": [1.0] * n,
        "_row": [0] * n,
        "user_id": list(ids),
        # the model's inputs: numbers as float32 (NaN where the store had nothing), a category as a string ('')
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
    cols = {**cols, "pred_probability": [0.5] * n}
    cols.setdefault("_fs_created_time.uv", [None] * n)
    tbl = pa.table({k: pa.array(v, types[k]) for k, v in cols.items()})
    tbl = tbl.replace_schema_metadata(
        {"roost.feature_refs": json.dumps(REFS), "roost.entities": json.dumps(["user_id"])}
    )
    day = folder / "m" / cols["_ts"][0].strftime("%Y-%m-%d")
    day.mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, day / name)
    return day / name


def concat(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    """Column lists of several request batches, one after the other."""
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}


def planted(root: Path, logs: Path) -> None:
    """Materialise at T1, serve at T2: user 0 unchanged, 1 updated since (stale), 2 expired by TTL (extra online),
    3 first seen after T1 (missing online), 4 unchanged but its score tampered with (value mismatch)."""
    from roost.features import materialize

    setup_view(root, PLANTED_ROWS)
    materialize(start=T0 - timedelta(days=1), end=T1)
    v1 = serve_rows([1, 2, 3, 4], T2, version="1")
    v1["score"][3] += 0.25  # user 4: the model saw another value than the store's row of that event time
    v2 = serve_rows([0], T2, version="2", first_request=100)
    write_log(logs, concat([v1, v2]))
