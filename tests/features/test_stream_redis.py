"""The Redis Streams consumer, in-process against a real redis-server: dead letters, lag metric, refused writes."""

from __future__ import annotations

import urllib.request

import pytest
from stream_helpers import make_events, metric, parse, setup_clicks

pytestmark = pytest.mark.services


@pytest.fixture
def clicks_ws(fws):
    setup_clicks(fws.root)
    return fws


def _client(redis_url):
    import redis

    return redis.Redis.from_url(redis_url)


def _fresh_stream(redis_url, name):
    r = _client(redis_url)
    r.delete(name, f"{name}:dead")
    return r


def test_bad_events_go_to_dead_letters_and_never_stall(clicks_ws, redis_url):
    from roost.features.streaming.consumer import stream

    name = "dl"
    r = _fresh_stream(redis_url, name)
    events = make_events(120, users=5, seed=1, bad_every=7)
    ids = [r.xadd(name, ev).decode() for ev in events]
    got: list[dict] = []
    stats = stream(
        "user_clicks",
        f"{redis_url.rsplit('/', 1)[0]}/0/{name}",
        batch=16,
        block_ms=50,
        max_events=len(events),
        sink=lambda view, rows: got.extend(rows),
    )
    good = [(i, parse(ev)) for i, ev in zip(ids, events, strict=True) if parse(ev) is not None]
    bad = [i for i, ev in zip(ids, events, strict=True) if parse(ev) is None]
    assert [row for _, row in good] == got  # every good event, in stream order, once
    assert (stats.pushed, stats.dead) == (len(good), len(bad))
    dead = r.xrange(f"{name}:dead")
    assert [f[b"__id"].decode() for _, f in dead] == bad
    reasons = {f[b"__reason"].decode() for _, f in dead}
    assert reasons <= {
        "missing field 'score'",
        "clicks: 'x' is not an integer (int64)",
        "event_time: 'yesterday' is not an ISO 8601 time (e.g. 2024-01-31T12:00:00.5Z)",
    }
    assert len(reasons) > 1
    info = r.xinfo_groups(name)[0]
    assert (info["pending"], info["lag"]) == (0, 0)  # bad events were acked too


def test_events_the_sink_refuses_are_dead_lettered_and_the_rest_written(clicks_ws, redis_url):
    from roost.errors import RoostError
    from roost.features.streaming.consumer import stream

    name = "refuse"
    r = _fresh_stream(redis_url, name)
    events = make_events(30, users=3, seed=2)
    ids = [r.xadd(name, ev).decode() for ev in events]
    written: list[dict] = []

    def sink(view, rows):  # refuses any batch holding a user 0 row, as push refuses a whole bad batch
        if any(row["user_id"] == 0 for row in rows):
            raise RoostError("user 0 refused", hint="test")
        written.extend(rows)

    stream(
        "user_clicks", f"redis://{redis_url.split('://')[1].split('/')[0]}/{name}", batch=10, max_events=30, sink=sink
    )
    rows = [parse(ev) for ev in events]
    assert written == [row for row in rows if row["user_id"] != 0]
    dead = r.xrange(f"{name}:dead")
    assert [f[b"__id"].decode() for _, f in dead] == [
        i for i, row in zip(ids, rows, strict=True) if row["user_id"] == 0
    ]
    assert {f[b"__reason"] for _, f in dead} == {b"refused by push: user 0 refused"}


def test_lag_and_pending_on_metrics_equal_xinfo(clicks_ws, redis_url):
    from roost.features.streaming.metrics import StreamStats, exposition
    from roost.features.streaming.redis_source import RedisSource

    name = "lagged"
    r = _fresh_stream(redis_url, name)
    for ev in make_events(50, users=5, seed=3):
        r.xadd(name, ev)
    src = RedisSource(redis_url, name, "g", "c1")
    delivered = src.read(20, 0)  # delivered, not acked
    src.ack([e.id for e in delivered[:5]])
    text = exposition(StreamStats("user_clicks", name, "g"), src.lag).decode()
    info = {k.decode() if isinstance(k, bytes) else k: v for k, v in r.xinfo_groups(name)[0].items()}
    assert (info["lag"], info["pending"]) == (30, 15)  # the numbers the metric must repeat
    assert metric(text, "roost_stream_lag") == info["lag"]
    assert metric(text, "roost_stream_pending") == info["pending"]
    src.close()


def test_metrics_endpoint_of_a_running_consumer(clicks_ws, redis_url):
    import threading

    from roost.features.streaming.consumer import stream

    name = "scraped"
    r = _fresh_stream(redis_url, name)
    events = make_events(40, users=4, seed=4, bad_every=10)
    for ev in events:
        r.xadd(name, ev)
    stop = threading.Event()
    seen: dict = {}

    def scrape(port):
        def run():
            try:
                watch()
            finally:
                stop.set()

        def watch():
            import time

            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
                if metric(text, "roost_stream_events_total") + metric(text, "roost_stream_dead_letters_total") >= 40:
                    seen["text"] = text
                    seen["xinfo"] = r.xinfo_groups(name)[0]
                    break
                time.sleep(0.05)
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Host": "evil.example"})
                urllib.request.urlopen(req, timeout=10)
            except urllib.error.HTTPError as e:
                seen["foreign_host"] = e.code

        threading.Thread(target=run, daemon=True).start()

    stream(
        "user_clicks",
        f"{redis_url}/{name}",
        batch=8,
        block_ms=50,
        metrics_port=0,
        stop=stop,
        sink=lambda v, rows: None,
        on_start=scrape,
    )
    text = seen["text"]
    assert metric(text, "roost_stream_events_total") == 36
    assert metric(text, "roost_stream_dead_letters_total") == 4
    assert metric(text, "roost_stream_batches_total") == 5
    assert metric(text, "roost_stream_errors_total") == 0
    assert metric(text, "roost_stream_lag") == seen["xinfo"]["lag"] == 0
    assert metric(text, "roost_stream_pending") == seen["xinfo"]["pending"] == 0
    assert metric(text, "roost_stream_events_per_second") > 0
    assert metric(text, "roost_stream_last_event_age_seconds") > 0
    assert seen["foreign_host"] == 400


def test_kafka_without_its_client_says_what_to_install(clicks_ws):
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("confluent-kafka is installed: the missing-client error cannot occur")
    from roost.errors import RoostError
    from roost.features.streaming.consumer import stream

    with pytest.raises(RoostError, match="confluent-kafka"):
        stream("user_clicks", "kafka://127.0.0.1:9/clicks", max_events=1)


def test_a_failed_read_is_retried_not_fatal(clicks_ws, redis_url):
    import redis

    from roost.features.streaming.consumer import Consumer
    from roost.features.streaming.events import schema_for
    from roost.features.streaming.metrics import StreamStats
    from roost.features.streaming.redis_source import RedisSource

    name = "flaky"
    r = _fresh_stream(redis_url, name)
    events = make_events(10, users=3, seed=6)
    for ev in events:
        r.xadd(name, ev)

    class Flaky(RedisSource):
        failures = 2

        def read(self, count, block_ms):
            if self.failures:
                self.failures -= 1
                raise redis.ConnectionError("connection refused")
            return super().read(count, block_ms)

    import threading

    stats = StreamStats("user_clicks", name, "g")
    got: list[dict] = []
    c = Consumer(
        "user_clicks",
        Flaky(redis_url, name, "g", "c"),
        schema_for("user_clicks"),
        stats,
        lambda v, rows: got.extend(rows),
    )
    c.read_backoff = 0.01
    assert [c.run_batch(100, 0, threading.Event()) for _ in range(3)] == [0, 0, 10]
    assert stats.errors == 2
    assert got == [parse(ev) for ev in events]
