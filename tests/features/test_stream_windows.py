"""The windowed-aggregate example (examples/streaming/window_counts.py): its rows, pushed, give training_set the
count of clicks in the last closed hopping window at any time — checked against a brute-force count."""

from __future__ import annotations

import importlib.util
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fs_helpers import write_defs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "streaming" / "window_counts.py"
T0 = datetime(2024, 5, 1, 9, 0, 0, 123, tzinfo=UTC)
SIZE, SLIDE, LATE = timedelta(minutes=5), timedelta(minutes=1), timedelta(seconds=20)
DEFS = """
user = Entity("user", {"user_id": "int64"})
counts = Source("counts", path="data/counts.parquet", event_time="event_time")
clicks_5m = FeatureView("clicks_5m", user, counts, fields={"clicks_5m": "int64"})
"""


def _example():
    spec = importlib.util.spec_from_file_location("window_counts", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _floor(t: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (t - epoch) // SLIDE * SLIDE


def test_pushed_window_counts_equal_brute_force_at_any_time(fws):
    from roost.features import apply, push, training_set

    rng = random.Random(5)
    events = []  # (arrival, user, event time)
    for _ in range(2500):
        e = T0 + timedelta(seconds=rng.uniform(0, 7200))
        jitter = timedelta(minutes=rng.uniform(2, 30)) if rng.random() < 0.03 else LATE * rng.random()
        events.append((e + jitter, rng.randrange(25), e))
    events.sort()
    counter = _example().WindowCounter(SIZE, SLIDE, lateness=LATE)
    rows = []
    for _, user, e in events:
        rows += counter.add(user, e)
    rows += counter.advance(T0 + timedelta(hours=3))
    # which events the watermark (newest event time seen - lateness) made too late: independent of the example
    newest, kept, dropped = None, [], []
    for _, user, e in events:
        if newest is not None and e < _floor(newest - LATE) and _floor(newest - LATE) > _floor(T0):
            dropped.append((user, e))
            continue
        kept.append((user, e))
        newest = e if newest is None or e > newest else newest
    assert sorted(counter.dropped) == sorted(dropped)
    assert 0 < len(dropped) < 100

    schema = pa.schema(
        [("user_id", pa.int64()), ("clicks_5m", pa.int64()), ("event_time", pa.timestamp("us", tz="UTC"))]
    )
    pq.write_table(schema.empty_table(), fws.root / "data" / "counts.parquet")
    write_defs(fws.root, DEFS)
    apply()
    push("clicks_5m", [{"user_id": r["key"], "clicks_5m": r["count"], "event_time": r["event_time"]} for r in rows])

    times = [T0 + timedelta(seconds=rng.uniform(-120, 3 * 3600)) for _ in range(150)]
    times += [_floor(t) for t in times[:30]]  # exactly on a window end: that window is visible
    import pandas as pd

    entity = pd.DataFrame({"user_id": [u for u in range(25) for _ in times], "event_time": times * 25})
    got = training_set(entity, ["clicks_5m:clicks_5m"])
    for u, t, value in zip(entity.user_id, entity.event_time, got.clicks_5m, strict=True):
        w = _floor(t.to_pydatetime())
        mine = [e for user, e in kept if user == u]
        want = None if not any(e < w for e in mine) else sum(w - SIZE <= e < w for e in mine)
        assert (None if pd.isna(value) else int(value)) == want, (u, t)
