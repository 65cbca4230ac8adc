"""Shared test data: a typed feature source with nulls, ties and late arrivals, and its definitions."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HEADER = "from datetime import timedelta\nfrom roost.features import Entity, Source, FeatureView\n"


def write_defs(root: Path, body: str, name: str = "defs.py") -> Path:
    """Write a definitions file into <root>/features/."""
    d = root / "features"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(HEADER + textwrap.dedent(body))
    return p


T0 = datetime(2024, 5, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")

TYPED_DEFS = """
import numpy as np

user = Entity("user", {"user_id": "int64"})
acct = Entity("acct", {"user_id": "int64", "region": "string"})
events = Source("events", path="data/events.parquet", event_time="event_time", created_time="created_time")
profiles = Source("profiles", path="data/profiles.csv", event_time=None)

def scaled(df):
    return {"score_x2": (df["score"] * 2).to_numpy(), "is_big": (df["n"] > 50).to_numpy()}

activity = FeatureView("activity", user, events, ttl=timedelta(hours=6), fields={
    "n": "int64", "n32": "int32", "score": "float64", "score32": "float32", "flag": "bool",
    "label": "string", "seen_at": "timestamp"})
derived = FeatureView("derived", user, events, ttl=timedelta(hours=6),
                      fields={"n_sq": "float64", "label_len": "int64"},
                      transform={"n_sq": "n * n", "label_len": "length(label)"})
pyview = FeatureView("pyview", user, events, ttl=timedelta(hours=12),
                     fields={"score_x2": "float64", "is_big": "bool"}, transform=scaled)
by_region = FeatureView("by_region", acct, events, fields={"score": "float64"}, ttl=timedelta(days=2))
profile = FeatureView("profile", user, profiles, fields={"tier": "string", "age": "int64"})
"""


def typed_events(n_rows: int = 600, n_users: int = 40, hours: int = 48, seed: int = 0) -> pa.Table:
    """Random events of typed fields (with nulls), created times (some late), exact (event, created) ties."""
    rng = np.random.default_rng(seed)
    uid = rng.integers(0, n_users, n_rows)
    et_min = rng.integers(0, hours * 6, n_rows) * 10  # 10-minute grid: many ties
    late = np.where(rng.random(n_rows) < 0.2, rng.integers(0, 600, n_rows), 0)
    et = [T0 + timedelta(minutes=int(m)) for m in et_min]
    ct = [None if rng.random() < 0.1 else T0 + timedelta(minutes=int(m + d)) for m, d in zip(et_min, late)]

    def nulls(values: list, p: float = 0.1) -> list:
        return [None if rng.random() < p else v for v in values]

    n = rng.integers(0, 100, n_rows)
    return pa.table(
        {
            "user_id": pa.array(uid, pa.int64()),
            "region": pa.array(rng.choice(["eu", "us"], n_rows).tolist(), pa.string()),
            "event_time": pa.array(et, TS),
            "created_time": pa.array(ct, TS),
            "n": pa.array(nulls(n.tolist()), pa.int64()),
            "n32": pa.array(nulls(rng.integers(-1000, 1000, n_rows).tolist()), pa.int32()),
            "score": pa.array(nulls(rng.normal(0, 1, n_rows).tolist()), pa.float64()),
            "score32": pa.array(nulls(rng.normal(0, 1, n_rows).astype(np.float32).tolist()), pa.float32()),
            "flag": pa.array(nulls((rng.random(n_rows) < 0.5).tolist()), pa.bool_()),
            "label": pa.array(nulls([f"l{int(x)}" for x in rng.integers(0, 30, n_rows)]), pa.string()),
            "seen_at": pa.array(nulls([T0 - timedelta(seconds=int(s)) for s in rng.integers(0, 10**6, n_rows)]), TS),
        }
    )


def write_typed_data(root: Path, seed: int = 0) -> pa.Table:
    """Write data/events.parquet and data/profiles.csv under `root`; return the events table."""
    tbl = typed_events(seed=seed)
    pq.write_table(tbl, root / "data" / "events.parquet")
    rows = ["user_id,tier,age"] + [f"{u},{'gold' if u % 3 == 0 else 'basic'},{20 + u}" for u in range(0, 40, 2)]
    (root / "data" / "profiles.csv").write_text("\n".join(rows) + "\n")
    return tbl


ALL_REFS = ["activity:*", "derived:*", "pyview:*", "profile:*"]


def entity_rows_at(t: datetime, user_ids: list[int]) -> pa.Table:
    """One entity row per user at time t."""
    return pa.table({"user_id": pa.array(user_ids, pa.int64()), "event_time": pa.array([t] * len(user_ids), TS)})


# point-in-time join engines the PIT tests run: name -> settings of roost.features.pit / roost.features.order
ENGINES = {
    "sort-search": {},  # the default: packed int64 sort, integer keys offset, two passes over file sources
    "argsort-dense-keys": {"SORT": "argsort", "INT_KEY_BITS": -1},  # argsort tier, keys numbered through a join
    "fallback-sql": {"KEY_BITS": 0},  # no exact int64 key fits: the view falls back to the ASOF SQL
    "sql-packed": {"ENGINE": "sql"},  # the ASOF SQL with the packed BIGINT ordering key
    "sql-struct": {"ENGINE": "sql", "PACK": False},  # the ASOF SQL with the struct ordering key
}


def use_engine(monkeypatch, name: str) -> None:
    """Switch the point-in-time join to one of ENGINES for this test."""
    from roost.features import order, pit

    for attr, value in ENGINES[name].items():
        monkeypatch.setattr(order if attr == "PACK" else pit, attr, value)
