"""Kafka as an event source through confluent-kafka: a consumer group, offsets committed after the write.

Messages are JSON objects (the same fields as a Redis event's `json` form); a producer keys them by entity so that
one entity's events stay in one partition, in order. Bad ones go to the topic `TOPIC.dead` with the reason in a
`reason` header and the original `partition:offset` in an `id` header. Tested against Tansu (a Kafka-protocol
broker, tests/features/test_stream_kafka.py); Apache Kafka itself was not available where roost is developed."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from roost.errors import ConfigError, RoostError
from roost.features.streaming.events import Event
from roost.features.streaming.sources import EventSource

__all__ = ["KafkaSource", "KafkaUnavailable"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
COMMIT_TIMEOUT_S = 10.0  # an ack whose commit the group coordinator has not confirmed by then raises KafkaUnavailable
# Kafka clients' default before Kafka 3.0 (the broker accepts 6 s .. 30 min): a consumer killed without leaving
# the group holds its partitions this long before the group hands them to a restarted one (3.0's 45 s is long)
DEFAULTS = {"session.timeout.ms": "10000"}
CONSUMER_ONLY = (
    "session.timeout.ms",
    "auto.offset.reset",
    "group.instance.id",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
    "isolation.level",
)
OWNED = ("bootstrap.servers", "group.id", "client.id", "enable.auto.commit", "enable.auto.offset.store")


class KafkaUnavailable(ConnectionError):
    """A transient Kafka error (broker down, leader moving): the consumer retries with backoff."""


def _client() -> Any:
    try:
        import confluent_kafka
    except ImportError as e:
        raise RoostError(
            "kafka:// sources need the confluent-kafka package",
            hint="pip install confluent-kafka (or 'roost[kafka]'), or use a redis:// stream",
        ) from e
    return confluent_kafka


def _config(servers: str, options: dict[str, str]) -> dict[str, Any]:
    """Client properties: roost's defaults, then the URL's query (except the ones roost sets itself)."""
    owned = sorted(k for k in options if k in OWNED)
    if owned:
        raise ConfigError(
            f"kafka source: {', '.join(owned)} cannot be set in the URL",
            hint="the servers come from kafka://HOST:PORT/..., the group from --group, offsets are committed by roost",
        )
    return {"bootstrap.servers": servers, **DEFAULTS, **options}


class KafkaSource(EventSource):
    """One member of a Kafka consumer group on one topic; auto-commit off, offsets committed by `ack`."""

    def __init__(
        self, servers: str, topic: str, group: str, consumer: str, options: dict[str, str] | None = None
    ) -> None:
        ck = _client()
        self._ck = ck
        self.servers, self.topic, self.group = servers, topic, group
        self.dead_name = f"{topic}.dead"
        base = _config(servers, options or {})
        settings = {
            **base,
            "group.id": group,
            "client.id": consumer,
            "enable.auto.commit": False,
            "auto.offset.reset": base.get("auto.offset.reset", "earliest"),
            "enable.partition.eof": False,
        }
        try:
            self.consumer = ck.Consumer(settings)
        except ck.KafkaException as e:
            raise ConfigError(f"kafka source: {e.args[0].str()}", hint="check the PROPERTY=VALUE pairs") from e
        self._check_topic()
        # for lag(), kept by the reading thread (the consumer's calls wait while another thread is in consume()):
        # assigned partitions -> offset after the last one delivered to roost (-1: none yet), high watermarks of
        # the last fetches; and the offsets committed, which only move forward
        self._next: dict[int, int] = {}
        self._fetched: dict[int, int] = {}
        self._acked: dict[int, int] = {}
        self._owed: dict[int, int] = {}  # acked offsets whose commit is not confirmed yet (sent with the next ack)
        self.commit_timeout = COMMIT_TIMEOUT_S
        self.consumer.subscribe([topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked)
        self._base = base
        self._admin: Any = None  # for lag(), made on first use
        producer = {k: v for k, v in base.items() if k not in CONSUMER_ONLY}
        self.producer = ck.Producer({**producer, "enable.idempotence": True})

    def _check_topic(self) -> None:
        """Fail now, naming the servers, when no broker answers or the topic does not exist."""
        try:
            meta = self.consumer.list_topics(self.topic, timeout=CONNECT_TIMEOUT_S)
        except self._ck.KafkaException as e:
            self.consumer.close()
            raise RoostError(
                f"cannot reach Kafka at {self.servers}: {e.args[0].str()}",
                hint="check the host and port in kafka://HOST:PORT/TOPIC and that the broker is running",
            ) from e
        t = meta.topics.get(self.topic)
        if t is None or t.error is not None or not t.partitions:
            self.consumer.close()
            raise RoostError(
                f"topic {self.topic!r} does not exist on Kafka at {self.servers}",
                hint="create it (kafka-topics.sh --create --topic NAME --partitions N), or check the name",
            )

    def _assigned(self, consumer: Any, parts: list[Any]) -> None:
        self._next = {**self._next, **{tp.partition: -1 for tp in parts}}
        log.info("assigned partitions %s of %s", sorted(tp.partition for tp in parts), self.topic)

    def _revoked(self, consumer: Any, parts: list[Any]) -> None:
        gone = {tp.partition for tp in parts}
        self._next = {p: o for p, o in self._next.items() if p not in gone}
        self._acked = {p: o for p, o in self._acked.items() if p not in gone}
        # (their next owner reads them again from the group's committed offsets: written twice, the same values)
        self._owed = {p: o for p, o in self._owed.items() if p not in gone}

    def read(self, count: int, block_ms: int) -> list[Event]:
        """Up to `count` messages; uncommitted ones come again after a restart (the group resumes at its offsets)."""
        out = []
        # consume() waits its whole timeout unless `count` messages come: take what the client has fetched, else
        # wait for the first message only, then take what came with it (Redis' XREADGROUP BLOCK does the same)
        msgs = self.consumer.consume(num_messages=count, timeout=0)
        if not msgs and block_ms > 0:
            msgs = self.consumer.consume(num_messages=1, timeout=block_ms / 1000)
            if msgs and count > 1:
                msgs += self.consumer.consume(num_messages=count - 1, timeout=0)
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise RoostError(f"kafka error on {self.topic} at {self.servers}: {err.str()}")
                raise KafkaUnavailable(f"{self.servers}: {err.str()}")  # the consumer waits and reads again
            raw = msg.value()  # JSON bytes; decoding (and refusing) is the consumer's job, as for Redis
            out.append(Event(f"{msg.partition()}:{msg.offset()}", None if raw is None else {"json": raw}))
        nxt = dict(self._next)
        for ev in out:
            p, o = (int(x) for x in ev.id.split(":"))
            nxt[p] = max(nxt.get(p, -1), o + 1)
        tp = self._ck.TopicPartition
        marks = {p: self.consumer.get_watermark_offsets(tp(self.topic, p), cached=True)[1] for p in nxt}
        self._fetched = {p: max(h, self._fetched.get(p, -1)) for p, h in marks.items()}
        self._next = nxt
        return out

    def ack(self, ids: list[str]) -> None:
        """Commit, per partition, the offset after the highest acked one, never moving it back (a batch's dead letters
        are committed before its good events, and a bad event may be the later one).

        Bounded: raises KafkaUnavailable when the group coordinator has not confirmed the commit within
        `commit_timeout` seconds (broker down or restarting, group rebalancing). The offsets are then owed: the next
        ack commits them with its own, so a later successful ack covers them (or, after a restart or a rebalance,
        the group reads them again: written twice, the same values). A commit is never retried on its own: the
        consumer goes on reading, which also lets the client rejoin the group."""
        top = dict(self._owed)
        for i in ids:
            p, o = (int(x) for x in i.split(":"))
            top[p] = max(top.get(p, -1), o + 1)
        top = {p: o for p, o in top.items() if o > self._acked.get(p, -1)}
        if not top:
            return
        self._owed = top
        self._commit(top)
        self._acked = {**self._acked, **top}
        self._owed = {}

    def _commit(self, top: dict[int, int]) -> None:
        """Send the commit without waiting (a synchronous one waits as long as the broker is away) and ask the group's
        committed offsets until they reach `top` or `commit_timeout` passes (KafkaUnavailable)."""
        ck = self._ck
        deadline = time.monotonic() + self.commit_timeout
        why = "not confirmed"
        try:
            self.consumer.commit(
                offsets=[ck.TopicPartition(self.topic, p, o) for p, o in top.items()], asynchronous=True
            )
            ask = [ck.TopicPartition(self.topic, p) for p in top]
            while (left := deadline - time.monotonic()) > 0:
                got = self.consumer.committed(ask, timeout=left)
                if all(tp.error is None and tp.offset >= top[tp.partition] for tp in got):
                    return
                time.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
        except ck.KafkaException as e:
            err = e.args[0]
            if err.fatal():
                raise RoostError(f"kafka error committing {self.topic} at {self.servers}: {err.str()}") from e
            why = err.str()
        raise KafkaUnavailable(
            f"{self.servers}: the commit of {self.topic} offsets {top} was not confirmed in {self.commit_timeout:g} s "
            f"({why}); they are committed with the next ack"
        )

    def dead_letter(self, bad: list[tuple[Event, str]]) -> None:
        """Produce bad messages with `reason` and `id` headers to TOPIC.dead; commit them once all are delivered.

        Not one transaction: a consumer killed between the two re-sends them (dead letters are at least once;
        the `id` header tells duplicates apart)."""
        if not bad:
            return
        failed: list[str] = []

        def report(err: Any, msg: Any) -> None:
            if err is not None:
                failed.append(err.str())

        for ev, reason in bad:
            value = (ev.fields or {}).get("json")
            headers = {"reason": reason, "id": ev.id}
            self.producer.produce(self.dead_name, value=value, headers=headers, on_delivery=report)
        left = self.producer.flush(30)
        if left or failed:  # (not KafkaUnavailable: a consumer that read on would commit past these events)
            raise RoostError(
                f"could not write {len(bad)} bad events to the dead-letter topic {self.dead_name!r} at "
                f"{self.servers}: {failed[0] if failed else f'{left} not delivered in 30 s'}",
                hint=f"create the topic {self.dead_name!r} (or let the broker auto-create topics); "
                "the events stay uncommitted and are read again on restart",
            )
        self.ack([ev.id for ev, _ in bad])  # (KafkaUnavailable: delivered, the commit owed)

    def lag(self) -> dict[str, float]:
        """Over the assigned partitions: lag = high watermark − this consumer's position (not yet delivered),
        pending = position − committed offset (delivered, not committed); their sum is Kafka's usual group lag.

        Asked through an admin client of its own: on the consumer's connection a ListOffsets waits behind the
        long-polling fetch (up to fetch.wait.max.ms per partition) and the group calls behind a rebalance."""
        ck = self._ck
        positions, fetched = self._next, self._fetched
        if not positions:
            return {"lag": math.nan, "pending": math.nan}  # not in the group yet (or given no partition)
        try:
            if self._admin is None:
                from confluent_kafka.admin import AdminClient

                self._admin = AdminClient({k: v for k, v in self._base.items() if k not in CONSUMER_ONLY})
            spec = ck.admin.OffsetSpec
            asked = {ck.TopicPartition(self.topic, p): spec.latest() for p in positions}
            asked_low = {ck.TopicPartition(self.topic, p): spec.earliest() for p in positions}
            highs = {k.partition: f.result(5).offset for k, f in self._admin.list_offsets(asked).items()}
            lows = {k.partition: f.result(5).offset for k, f in self._admin.list_offsets(asked_low).items()}
            group = ck.ConsumerGroupTopicPartitions(self.group, [ck.TopicPartition(self.topic, p) for p in highs])
            fut = self._admin.list_consumer_group_offsets([group])[self.group]
            committed = {tp.partition: tp.offset for tp in fut.result(5).topic_partitions}
        except Exception as e:  # noqa: BLE001 - lag is informational: an unreachable broker shows as unknown
            log.debug("kafka lag of %s unknown: %s", self.topic, e)
            return {"lag": math.nan, "pending": math.nan}
        lag = pending = 0
        for p, listed in highs.items():
            start = committed.get(p, -1)
            start = start if start >= 0 else lows[p]
            pos = positions.get(p, -1)
            pos = pos if pos >= 0 else start
            # with the high watermark of the last fetch: Tansu 0.6's ListOffsets answers the last batch's first
            # offset + 1; on Apache Kafka the listed one is exact and the fetched one never above it
            lag += max(listed, fetched.get(p, -1), pos) - pos
            pending += pos - start
        return {"lag": float(lag), "pending": float(pending)}

    def close(self) -> None:
        """Commit what is owed (bounded), leave the group and flush the producer."""
        if self._owed:
            try:
                self.ack([])
            except KafkaUnavailable as e:  # read again after the restart: written twice, the same values
                log.warning("closing without committing %s: %s", self._owed, e)
        self.producer.flush(10)
        self.consumer.close()
