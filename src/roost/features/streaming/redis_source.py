"""Redis Streams as an event source: XREADGROUP in a consumer group, XACK after the write, XAUTOCLAIM on restart."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from roost.errors import RoostError
from roost.features.streaming.events import Event
from roost.features.streaming.sources import EventSource

__all__ = ["RedisSource", "group_info"]

log = logging.getLogger(__name__)

CLAIM_IDLE_MS = 60_000  # a pending event idle this long belonged to a consumer that died: take it over
CLAIM_EVERY_S = 30.0


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _stream_entries(reply: Any) -> Any:
    """The entries of the one stream read, from an XREADGROUP reply (RESP2, which this client asks for)."""
    return reply[0][1] if reply else []


def group_info(client: Any, stream: str, group: str) -> dict[str, Any]:
    """XINFO GROUPS' entry for `group` (keys as text), or {} when the stream or group does not exist."""
    import redis

    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return {}
    for g in groups:
        info = {_s(k): v for k, v in g.items()}
        if _s(info.get("name")) == group:
            return info
    return {}


class RedisSource(EventSource):
    """One consumer of a consumer group on one stream; the group is created (from the stream's start) if new."""

    def __init__(self, server: str, stream: str, group: str, consumer: str, start: str = "0") -> None:
        try:
            import redis
        except ImportError as e:
            raise RoostError("the redis package is not installed", hint="pip install 'roost[redis]'") from e
        self.stream, self.group, self.consumer = stream, group, consumer
        self.dead_name = f"{stream}:dead"
        self.client = redis.Redis.from_url(server, protocol=2, socket_timeout=None, socket_connect_timeout=10)
        try:
            self.client.xgroup_create(stream, group, id=start, mkstream=True)
            log.info("created consumer group %s on stream %s from %s", group, stream, start)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        except redis.ConnectionError as e:
            raise RoostError(f"cannot reach Redis at {server}: {e}", hint="check the host and port") from e
        self._own_pending = True  # first re-read what this consumer was given before and never acked
        self._next_claim = 0.0
        self._claim_cursor = "0-0"
        self.redelivered = 0

    def _entries(self, reply: Any) -> list[Event]:
        out = []
        for entry_id, fields in reply or []:
            out.append(Event(_s(entry_id), fields if fields else None))
        return out

    def read(self, count: int, block_ms: int) -> list[Event]:
        """This consumer's unacked events first, then events idle in dead consumers, then new ones."""
        if self._own_pending:
            reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)
            events = self._entries(_stream_entries(reply))
            if events:
                self.redelivered += len(events)
                return events
            self._own_pending = False
            if self.redelivered:
                log.info("re-read %d events delivered before a restart and never acked", self.redelivered)
        if time.monotonic() >= self._next_claim:
            cursor, claimed, *_ = self.client.xautoclaim(
                self.stream, self.group, self.consumer, CLAIM_IDLE_MS, self._claim_cursor, count=count
            )
            self._claim_cursor = _s(cursor)
            if self._claim_cursor == "0-0":
                self._next_claim = time.monotonic() + CLAIM_EVERY_S
            events = self._entries(claimed)
            if events:
                log.info("took over %d events idle in other consumers of group %s", len(events), self.group)
                self.redelivered += len(events)
                return events
        reply = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        return self._entries(_stream_entries(reply))

    def ack(self, ids: list[str]) -> None:
        """XACK the ids."""
        if ids:
            self.client.xack(self.stream, self.group, *ids)

    def dead_letter(self, bad: list[tuple[Event, str]]) -> None:
        """XADD each bad event with `__reason`, `__id`, `__group` to STREAM:dead and XACK it, in one MULTI/EXEC."""
        if not bad:
            return
        pipe = self.client.pipeline(transaction=True)
        for ev, reason in bad:
            fields: dict[Any, Any] = dict(ev.fields or {})
            fields.update({"__reason": reason, "__id": ev.id, "__group": self.group})
            pipe.xadd(self.dead_name, fields)
        pipe.xack(self.stream, self.group, *[ev.id for ev, _ in bad])
        pipe.execute()

    def lag(self) -> dict[str, float]:
        """XINFO GROUPS' lag and pending of this group."""
        info = group_info(self.client, self.stream, self.group)
        lag = info.get("lag")
        pending = info.get("pending")
        return {
            "lag": math.nan if lag is None else float(lag),
            "pending": math.nan if pending is None else float(pending),
        }

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
