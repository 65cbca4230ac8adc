"""Shared by the stream-consumer tests: a clicks view, generated event streams and the brute-force replay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

T0 = datetime(2024, 5, 1, tzinfo=UTC)

CLICKS_DEFS = """
user = Entity("user", {"user_id": "int64"})
clicks = Source("clicks", path="data/clicks.parquet", event_time="event_time")
user_clicks = FeatureView(
    "user_clicks",
    user,
    clicks,
    ttl=timedelta(hours=6),
    fields={"clicks": "int64", "score": "float64", "country": "string"},
)
"""


def setup_clicks(root: Path) -> None:
    """Write an empty clicks source and the view's definitions, then apply them."""
    from fs_helpers import write_defs

    from roost.features import apply

    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("clicks", pa.int64()),
            ("score", pa.float64()),
            ("country", pa.string()),
            ("event_time", pa.timestamp("us", tz="UTC")),
        ]
    )
    pq.write_table(schema.empty_table(), root / "data" / "clicks.parquet")
    write_defs(root, CLICKS_DEFS)
    apply()


def iso(t: datetime) -> str:
    """Event time as producers write it (ISO 8601, UTC offset)."""
    return t.isoformat().replace("+00:00", "Z")


def make_events(n: int, users: int, seed: int, bad_every: int = 0) -> list[dict[str, str]]:
    """Flat text events, out of order (times jump back up to 2 h), ties on (user, time) with different values,
    exact duplicates (producer retries); every `bad_every`-th event is bad (missing field or wrong type)."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append(
                rng.choice(
                    [
                        {"user_id": "1", "clicks": "2", "country": "fr", "event_time": iso(T0)},  # no score
                        {"user_id": "1", "clicks": "x", "score": "1", "country": "fr", "event_time": iso(T0)},
                        {"user_id": "1", "clicks": "2", "score": "1", "country": "fr", "event_time": "yesterday"},
                    ]
                )
            )
            continue
        r = rng.random()
        if r < 0.05 and out:
            out.append(dict(out[rng.randrange(len(out))]))  # a retried (duplicate) event
            continue
        minute = rng.randrange(600) if r < 0.2 else i // 3 + rng.randrange(5)  # late or roughly in order
        ev = {
            "user_id": str(rng.randrange(users)),
            "clicks": str(rng.randrange(1000)),
            "score": repr(rng.random()),
            "country": rng.choice(["fr", "de", "us", ""]),
            "event_time": iso(T0 + timedelta(minutes=minute)),
        }
        out.append(ev)
    return out


def parse(ev: dict[str, str]) -> dict | None:
    """The test's own reading of a flat event (None when it is bad)."""
    try:
        t = datetime.fromisoformat(ev["event_time"].replace("Z", "+00:00"))
        return {
            "user_id": int(ev["user_id"]),
            "clicks": int(ev["clicks"]),
            "score": float(ev["score"]),
            "country": ev["country"],
            "event_time": t,
        }
    except (KeyError, ValueError):
        return None


def replay_latest(events: list[dict[str, str]]) -> dict[int, dict]:
    """Each user's online row after applying the events once in stream order: greatest event time, the later
    event at equal times (the offline join's tie rule without created times)."""
    best: dict[int, dict] = {}
    for ev in events:
        row = parse(ev)
        if row is None:
            continue
        cur = best.get(row["user_id"])
        if cur is None or row["event_time"] >= cur["event_time"]:
            best[row["user_id"]] = row
    return best


def replay_pit(events: list[dict[str, str]], user: int, t: datetime, ttl: timedelta) -> dict | None:
    """Brute-force point-in-time value of `user` at `t`: the latest event at or before t, not older than the ttl."""
    best = None
    for ev in events:
        row = parse(ev)
        if row is None or row["user_id"] != user or not (t - ttl <= row["event_time"] <= t):
            continue
        if best is None or row["event_time"] >= best["event_time"]:
            best = row
    return best
