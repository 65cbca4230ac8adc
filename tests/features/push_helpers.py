"""Shared by the push tests: a view with created times and ties, random pushes, and a brute-force PIT reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

T0 = datetime(2024, 5, 1, tzinfo=UTC)
FIELDS = ["clicks", "score", "label"]

DEFS = """
user = Entity("user", {"user_id": "int64"})
events = Source("events", path="data/events.parquet", event_time="event_time", created_time="created_time")
clicks = FeatureView("clicks", user, events, fields={"clicks": "int64", "score": "float64", "label": "string"})
clicks_ttl = FeatureView("clicks_ttl", user, events, ttl=timedelta(hours=3),
                         fields={"clicks": "int64", "score": "float64", "label": "string"})
"""


def rows(rng: np.random.Generator, n: int, n_users: int = 12, hours: int = 30, ct_none: float = 0.3) -> pd.DataFrame:
    """Random rows on a 30-minute grid (many (key, event time) ties), some without created time, some late."""
    et = [T0 + timedelta(minutes=30 * int(m)) for m in rng.integers(0, hours * 2, n)]
    ct = [
        None if rng.random() < ct_none else t + timedelta(minutes=30 * int(d))
        for t, d in zip(et, rng.integers(0, 3, n))
    ]
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n).astype("int64"),
            "event_time": pd.to_datetime(et, utc=True),
            "created_time": pd.Series(pd.to_datetime(ct, utc=True)),
            "clicks": rng.integers(0, 1000, n).astype("int64"),
            "score": np.round(rng.normal(size=n), 6),
            "label": [f"l{int(x)}" for x in rng.integers(0, 10**6, n)],
        }
    )


def all_rows(batch: pd.DataFrame, pushes: list[pd.DataFrame]) -> list[dict]:
    """Every row the view holds, in tie-break order: source rows, then pushes in order; a re-pushed
    (key, event time, created time) keeps only its last push (at its last position)."""
    out = [dict(r, _order=i) for i, r in enumerate(batch.to_dict("records"))]
    pushed: dict[tuple, dict] = {}
    order = len(out)
    for p in pushes:
        for r in p.to_dict("records"):
            ct = r.get("created_time")
            key = (r["user_id"], r["event_time"], None if ct is None or pd.isna(ct) else ct)
            pushed.pop(key, None)
            pushed[key] = dict(r, _order=order)
            order += 1
    out.extend(sorted(pushed.values(), key=lambda r: r["_order"]))
    return out


def _ct(r: dict) -> float:
    ct = r.get("created_time")
    return float("-inf") if ct is None or pd.isna(ct) else ct.timestamp()


def brute_pit(held: list[dict], user: int, t: datetime, ttl: timedelta | None) -> dict | None:
    """The row a point-in-time join must pick: the greatest (event time, created time, order) at or before t,
    and none when that row is older than t - ttl."""
    cands = [r for r in held if r["user_id"] == user and r["event_time"] <= t]
    if not cands:
        return None
    best = max(cands, key=lambda r: (r["event_time"].timestamp(), _ct(r), r["_order"]))
    if ttl is not None and best["event_time"] < t - ttl:
        return None
    return best


def brute_latest(held: list[dict], user: int) -> dict | None:
    """The latest row of an entity (what the online store must hold)."""
    cands = [r for r in held if r["user_id"] == user]
    return max(cands, key=lambda r: (r["event_time"].timestamp(), _ct(r), r["_order"])) if cands else None


def fresh_redis(url: str) -> str:
    """Empty the session's redis-server (every test workspace is project 'ws': the same key prefix)."""
    import redis

    redis.Redis.from_url(url).flushdb()
    return url
