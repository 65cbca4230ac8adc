"""`stream(view, source)`: consume events from Redis Streams or Kafka into a view's online store and offline log.

Delivery is at-least-once (an event is acked only after its batch is written online and offline) and the write is
idempotent on (entity key, event time), so a consumer killed at any point and restarted applies every event
exactly once in effect. One batch (at most `batch` events) is in flight at a time: memory stays bounded whatever
the producers do, and the stream itself holds the backlog (visible as lag on /metrics)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from roost.errors import ConfigError, RoostError
from roost.features.streaming.columns import decode_columns
from roost.features.streaming.events import BadEvent, Event, Schema, decode, schema_for
from roost.features.streaming.metrics import MetricsServer, StreamStats
from roost.features.streaming.sources import EventSource, default_consumer, parse_source

__all__ = ["stream", "Consumer", "source_label"]

log = logging.getLogger(__name__)

Sink = Callable[[str, list[dict[str, Any]]], Any]
MAX_BACKOFF_S = 30.0


class _PushSink:
    """The default sink: `roost.features.push` through one Pusher (the view's definitions looked up once), given a
    typed Arrow table (decoded events are already typed: this skips push's per-value conversion, ~2x faster)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.pusher: Any = None

    takes_tables = True  # the consumer may hand it a decoded Arrow table instead of rows

    def __call__(self, view: str, rows: Any) -> Any:
        import pyarrow as pa

        from roost.features.definitions import arrow_type

        if self.pusher is None:
            from roost.features.push import Pusher

            self.pusher = Pusher(view)
        if isinstance(rows, pa.Table):
            return self.pusher.push(rows)
        sc = self.schema
        types = {**sc.keys, **sc.fields, sc.event_time: "timestamp"}
        if sc.created_time:
            types[sc.created_time] = "timestamp"
        table = pa.table({c: pa.array([r[c] for r in rows], arrow_type(d)) for c, d in types.items()})
        return self.pusher.push(table)


class Consumer:
    """Reads bounded batches from an EventSource, writes them through `sink`, acks; bad events to dead letters."""

    def __init__(self, view: str, source: EventSource, schema: Schema, stats: StreamStats, sink: Sink) -> None:
        self.view, self.source, self.schema, self.stats, self.sink = view, source, schema, stats, sink
        self.read_backoff = 0.5

    def _write(self, batch: Any, events: list[Event]) -> list[tuple[Event, str]]:
        """Write the batch (rows, or a table the sink takes); when the sink refuses it, write the rows one by one
        and return the refused events."""
        if not getattr(self.sink, "takes_tables", False) and not isinstance(batch, list):
            batch = batch.to_pylist()
        try:
            self.sink(self.view, batch)
            return []
        except RoostError as e:  # refused as a batch (validation): find the refused rows, write the others
            log.warning("batch of %d refused (%s); writing its events one by one", len(events), e)
        rows = batch if isinstance(batch, list) else batch.to_pylist()
        refused = []
        for row, ev in zip(rows, events, strict=True):
            try:
                self.sink(self.view, [row])
            except RoostError as e:
                refused.append((ev, f"refused by push: {e.message}"))
        return refused

    def _decode_each(self, events: list[Event], bad: list[tuple[Event, str]]) -> tuple[list[Any], list[Event]]:
        """Rows of the events that decode, and those events; the others appended to `bad` with their reason."""
        rows, good = [], []
        for ev in events:
            try:
                rows.append(decode(ev.fields or {}, self.schema))
                good.append(ev)
            except BadEvent as e:
                bad.append((ev, str(e)))
        return rows, good

    def run_batch(self, count: int, block_ms: int, stop: threading.Event) -> int:
        """Read, decode, write, dead-letter and ack one batch; returns the number of events handled."""
        try:
            events = self.source.read(count, block_ms)
            self.read_backoff = 0.5
        except RoostError:
            raise
        except Exception as e:  # noqa: BLE001 - the broker is down or restarting: wait and read again
            self.stats.errors += 1
            log.warning("reading %s failed (%s); retrying in %.1f s", self.view, e, self.read_backoff)
            stop.wait(self.read_backoff)
            self.read_backoff = min(MAX_BACKOFF_S, self.read_backoff * 2)
            return 0
        if not events:
            return 0
        gone = [ev.id for ev in events if ev.fields is None]  # deleted (XDEL/XTRIM) after delivery: nothing to do
        good = [ev for ev in events if ev.fields is not None]
        bad: list[tuple[Event, str]] = []
        table = decode_columns([ev.fields for ev in good if ev.fields is not None], self.schema)
        rows: Any = table
        if table is None:  # some event needs a closer look: decode one by one, bad ones with their reason
            rows, good = self._decode_each(good, bad)
        backoff = 0.5
        while len(rows):
            try:
                bad.extend(self._write(rows, good))
                break
            except Exception as e:  # noqa: BLE001 - any failure to write (store down, disk full): keep the batch
                # unacked and retry it; the consumer must not die and must never ack what it did not write
                self.stats.errors += 1
                log.warning("writing %d events of %s failed (%s); retrying in %.1f s", len(rows), self.view, e, backoff)
                if stop.wait(backoff):
                    log.warning("stopped with %d unwritten events: they are delivered again on restart", len(rows))
                    return 0
                backoff = min(MAX_BACKOFF_S, backoff * 2)
        bad_ids = {ev.id for ev, _ in bad}
        try:
            self.source.dead_letter(bad)
            self.source.ack([ev.id for ev in good if ev.id not in bad_ids] + gone)
        except ConnectionError as e:  # (KafkaUnavailable) a commit not confirmed in time: the next ack commits it,
            # or the events are read again (written twice, the same values); reading goes on (the client can rejoin).
            # A dead letter not delivered is a RoostError: the consumer stops before committing past it
            self.stats.errors += 1
            log.warning("acking %d events of %s failed (%s); retrying in %.1f s", len(events), self.view, e, backoff)
            stop.wait(backoff)
        newest = _newest(rows, self.schema.event_time)
        self.stats.batch_done(len(good) - sum(ev.id in bad_ids for ev in good), len(bad), newest)
        for ev, reason in bad:
            log.warning("event %s of %s to %s: %s", ev.id, self.view, self.source.dead_name, reason)
        return len(events)


def _newest(rows: Any, event_time: str) -> float | None:
    """The latest event time of the batch (epoch seconds), None when empty."""
    if isinstance(rows, list):
        return max((r[event_time].timestamp() for r in rows), default=None)
    import pyarrow.compute as pc

    top = pc.max(rows.column(event_time).cast("int64")).as_py()
    return None if top is None else top / 1e6


def open_source(url: str, view: str, group: str | None = None, consumer: str | None = None) -> EventSource:
    """The event source for `url`, joined to consumer group `group` (default `roost-<view>`) as `consumer`."""
    src = parse_source(url)
    group = group or f"roost-{view}"
    consumer = consumer or default_consumer(view)
    if src.scheme == "kafka":
        from roost.features.streaming.kafka_source import KafkaSource

        return KafkaSource(src.server, src.name, group, consumer, src.options)
    from roost.features.streaming.redis_source import RedisSource

    return RedisSource(src.server, src.name, group, consumer)


def source_label(url: str) -> str:
    """The source URL as /metrics and the log show it: no query (Kafka client properties may hold secrets), no
    password."""
    from roost.errors import redact_url

    return redact_url(url.split("?", 1)[0])


def _install_stop(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set `stop` (main thread only); returns the function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %d: finishing the batch in flight, then stopping", signum)
        stop.set()

    for s in old:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore


def stream(
    view: str,
    source: str,
    *,
    group: str | None = None,
    consumer: str | None = None,
    batch: int = 1000,
    block_ms: int = 1000,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    max_events: int | None = None,
    stop: threading.Event | None = None,
    sink: Sink | None = None,
    on_start: Callable[[int | None], Any] | None = None,
) -> StreamStats:
    """Consume `source` (redis://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC) into `view` until stopped.

    Stops on SIGTERM/SIGINT (after the batch in flight is written and acked), when `stop` is set, or after
    `max_events` events. Serves /metrics on `metrics_port` (0: any free port) when given.

    Parameters
    ----------
    view: the feature view the events update (online and offline, exactly once per event).
    source: redis://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC.
    group, consumer: the consumer group and this consumer's name (default: one per view, one per process).
    batch: events read and written per batch (1..100,000).
    block_ms: how long one read waits for events (0..60,000 ms).
    metrics_port, metrics_host: where /metrics is served (lag, events, batches), if a port is given.
    max_events: stop after this many events (default: run until stopped).
    stop: an Event that stops the consumer after the batch in flight.
    sink: where batches go (default: the view's push path).
    on_start: called with the metrics port once the consumer reads.
    """
    if not 1 <= batch <= 100_000:
        raise ConfigError(f"batch {batch} is out of range", hint="use 1..100000 events per batch")
    if not 0 <= block_ms <= 60_000:
        raise ConfigError(f"block_ms {block_ms} is out of range", hint="use 0..60000 milliseconds")
    parse_source(source)  # a bad URL fails before anything connects
    schema = schema_for(view)
    stop = stop or threading.Event()
    src = open_source(source, view, group, consumer)
    grp = getattr(src, "group", group or "")
    stats = StreamStats(view, source_label(source), grp)
    server = MetricsServer(stats, src.lag, metrics_port, metrics_host) if metrics_port is not None else None
    restore = _install_stop(stop)
    worker = Consumer(view, src, schema, stats, sink or _PushSink(schema))
    log.info("consuming %s into %s (group %s, batch %d)", source_label(source), view, grp, batch)
    try:
        if on_start is not None:
            on_start(server.port if server else None)
        handled = 0
        while not stop.is_set() and (max_events is None or handled < max_events):
            n = batch if max_events is None else min(batch, max_events - handled)
            handled += worker.run_batch(n, block_ms, stop)
            stats.redelivered = getattr(src, "redelivered", 0)
    finally:
        restore()
        if server is not None:
            server.close()
        src.close()
    log.info("stopped: %d events written, %d dead letters, %d batches", stats.pushed, stats.dead, stats.batches)
    return stats
