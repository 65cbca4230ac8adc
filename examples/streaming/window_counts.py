"""A hopping-window counter, as a stream processor would run it: per entity, events in the last `size`, emitted
at every window end (each `slide`) once the event-time watermark has passed it.

Window ending at w counts the events with w - size <= event time < w; its row is (key, event_time=w, count). Push
the rows into a view (`roost.features.push`, or XADD them to a stream `roost features stream` consumes): the
point-in-time join at t then gives the count of the last window ended at or before t, online and offline alike.
The watermark is the newest event time seen minus `lateness`; an event older than a window already emitted is
dropped (and kept in `dropped`). A row is emitted only when an entity's count changed, including to 0, so an idle
entity costs nothing after its last window empties.

Run it on a stream: `python examples/streaming/window_counts.py redis://127.0.0.1:6379/0 clicks clicks_5m`
reads raw click events (user_id, event_time) from the stream `clicks` and XADDs the counts to `clicks_5m`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowCounter:
    """Counts of events per key in hopping windows [w - size, w), w every `slide`, emitted behind a watermark."""

    def __init__(self, size: timedelta, slide: timedelta, lateness: timedelta = timedelta(0)) -> None:
        if size % slide:
            raise ValueError("size must be a whole number of slides")
        self.slide_us = slide // timedelta(microseconds=1)
        self.n = size // slide  # buckets per window
        self.lateness = lateness
        self.buckets: dict[Any, dict[int, int]] = defaultdict(dict)  # key -> bucket index -> count
        self.emitted: dict[Any, int] = {}  # key -> last count emitted
        self.next_end: int | None = None  # bucket index of the next window end to emit
        self.done: int | None = None  # the last window end emitted
        self.newest: datetime | None = None
        self.dropped: list[tuple[Any, datetime]] = []

    def _bucket(self, t: datetime) -> int:
        return (t - EPOCH) // timedelta(microseconds=self.slide_us)

    def _end_time(self, end: int) -> datetime:
        return EPOCH + timedelta(microseconds=end * self.slide_us)

    def add(self, key: Any, t: datetime) -> list[dict[str, Any]]:
        """Count one event; returns the rows of the windows the watermark has now passed."""
        b = self._bucket(t)
        if self.done is not None and b < self.done:  # a window holding it was already emitted
            self.dropped.append((key, t))
            return []
        if self.next_end is None or (self.done is None and b + 1 < self.next_end):
            self.next_end = b + 1
        self.buckets[key][b] = self.buckets[key].get(b, 0) + 1
        self.newest = t if self.newest is None or t > self.newest else self.newest
        return self.advance(self.newest - self.lateness)

    def advance(self, watermark: datetime) -> list[dict[str, Any]]:
        """Emit every window ending at or before `watermark` (call it on idle streams with the wall clock too)."""
        rows: list[dict[str, Any]] = []
        while self.next_end is not None and self._end_time(self.next_end) <= watermark:
            end = self.next_end
            for key in list(self.buckets):
                counts = self.buckets[key]
                total = sum(c for b, c in counts.items() if end - self.n <= b < end)
                if total != self.emitted.get(key, 0):
                    rows.append({"key": key, "count": total, "event_time": self._end_time(end)})
                    self.emitted[key] = total
                for b in [b for b in counts if b < end + 1 - self.n]:  # no later window holds these
                    del counts[b]
                if not counts and total == 0:
                    del self.buckets[key]
            self.done, self.next_end = end, end + 1
        return rows


def main(redis_url: str, source: str, target: str) -> None:  # pragma: no cover - the runnable example
    """Read (user_id, event_time) events from `source`, XADD 5-minute counts (every minute) to `target`."""
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    counter = WindowCounter(timedelta(minutes=5), timedelta(minutes=1), lateness=timedelta(seconds=10))
    last = "$"
    while True:
        reply = r.xread({source: last}, count=1000, block=1000)
        rows = []
        for entry_id, f in reply[0][1] if reply else []:
            last = entry_id
            t = datetime.fromisoformat(f["event_time"].replace("Z", "+00:00"))
            rows += counter.add(int(f["user_id"]), t)
        rows += counter.advance(datetime.now(UTC) - counter.lateness)  # windows end on idle streams too
        for row in rows:
            fields = {"user_id": row["key"], "clicks_5m": row["count"], "event_time": row["event_time"].isoformat()}
            r.xadd(target, fields)


if __name__ == "__main__":  # pragma: no cover
    import sys

    main(*sys.argv[1:4])
