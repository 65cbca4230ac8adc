"""Kafka as an event source through confluent-kafka: a consumer group, offsets committed after the write.

Messages are JSON objects (the same fields as a Redis event's `json` form). Bad ones go to the topic `TOPIC.dead`
with the reason in a `reason` header. Not tested against a broker in roost's suite (none installs from the
package registries roost's CI can reach); the consumer loop around it is the one the Redis tests exercise."""

from __future__ import annotations

import math
from typing import Any

from roost.errors import RoostError
from roost.features.streaming.events import Event
from roost.features.streaming.sources import EventSource

__all__ = ["KafkaSource"]


def _client() -> Any:
    try:
        import confluent_kafka
    except ImportError as e:
        raise RoostError(
            "kafka:// sources need the confluent-kafka package",
            hint="pip install confluent-kafka (or 'roost[kafka]'), or use a redis:// stream",
        ) from e
    return confluent_kafka


class KafkaSource(EventSource):
    """One member of a Kafka consumer group on one topic; auto-commit off, offsets committed by `ack`."""

    def __init__(self, servers: str, topic: str, group: str, consumer: str) -> None:
        ck = _client()
        self._ck = ck
        self.topic, self.group = topic, group
        self.dead_name = f"{topic}.dead"
        self.consumer = ck.Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": group,
                "client.id": consumer,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )
        self.consumer.subscribe([topic])
        self.producer = ck.Producer({"bootstrap.servers": servers, "enable.idempotence": True})
        self._last: dict[int, int] = {}  # partition -> highest offset read and not yet committed

    def read(self, count: int, block_ms: int) -> list[Event]:
        """Up to `count` messages; uncommitted ones come again after a restart (the group resumes at its offsets)."""
        out = []
        for msg in self.consumer.consume(num_messages=count, timeout=block_ms / 1000):
            if msg.error():
                raise RoostError(f"kafka error on {self.topic}: {msg.error()}", hint="check the broker and topic")
            raw = msg.value()  # JSON bytes; decoding (and refusing) is the consumer's job, as for Redis
            out.append(Event(f"{msg.partition()}:{msg.offset()}", None if raw is None else {"json": raw}))
        return out

    def ack(self, ids: list[str]) -> None:
        """Commit, per partition, the offset after the highest acked one (synchronously)."""
        top: dict[int, int] = {}
        for i in ids:
            p, o = (int(x) for x in i.split(":"))
            top[p] = max(top.get(p, -1), o)
        if top:
            tps = [self._ck.TopicPartition(self.topic, p, o + 1) for p, o in top.items()]
            self.consumer.commit(offsets=tps, asynchronous=False)

    def dead_letter(self, bad: list[tuple[Event, str]]) -> None:
        """Produce bad messages with a `reason` header to TOPIC.dead, flush, then commit them."""
        for ev, reason in bad:
            value = (ev.fields or {}).get("json")
            self.producer.produce(self.dead_name, value=value, headers={"reason": reason, "id": ev.id})
        if bad:
            self.producer.flush(30)
            self.ack([ev.id for ev, _ in bad])

    def lag(self) -> dict[str, float]:
        """Sum over assigned partitions of high watermark − committed offset (pending is not tracked by Kafka)."""
        total = 0.0
        try:
            parts = self.consumer.assignment()
            for tp in self.consumer.committed(parts, timeout=5):
                _, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                total += max(0, high - max(tp.offset, 0))
        except Exception:  # noqa: BLE001 - lag is informational: an unreachable broker shows as unknown
            return {"lag": math.nan, "pending": math.nan}
        return {"lag": total, "pending": math.nan}

    def close(self) -> None:
        """Leave the group and flush the producer."""
        self.producer.flush(10)
        self.consumer.close()
