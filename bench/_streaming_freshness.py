"""Freshness of stream ingestion: event produced into a Redis Stream or a Kafka topic → readable in the online store.

A producer XADDs events (Kafka: produces JSON events keyed by user to a 3-partition topic on Tansu, a
Kafka-compatible broker; `--sources kafka`) at a fixed rate (default 10,000/s for 10 s, in ticks of 10 ms) while
`roost features stream` (a separate process, the default batch of 1,000) writes them through push to the online
store and the offline log. Every 50th event is a probe: its own entity, carrying its sequence number; the
bench process polls the online store for the probes produced and not yet seen, between producer ticks, and
records (first time the value is readable) − (time the XADDs were sent) — an upper bound that includes the poll
interval (≤ one tick). The clock starts once a warm-up event is readable (the consumer's first batch pays its
imports and connections). Prints p50/p99/max, the consumer's sustained rate and the load average.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _servers import kafka as kafka_server
from _servers import redis as redis_server

import roost

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFS = """
from datetime import timedelta
from roost.features import Entity, FeatureView, Source

user = Entity("user", {"user_id": "int64"})
clicks = Source("clicks", path="data/clicks.parquet", event_time="event_time")
live_clicks = FeatureView("live_clicks", user, clicks, ttl=timedelta(days=1), fields={"seq": "int64"})
"""


KAFKA_QUERY = "fetch.wait.max.ms=50"
WARM_ID = 2 * 10**9  # the warm-up event's entity (no probe uses it)


def _workspace(root: Path, online_store: str | None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roost import workspace
    from roost.features import apply

    w = roost.init(root)
    if online_store:
        cfg = root / "roost.yaml"
        cfg.write_text(cfg.read_text() + f"\nonline_store: {online_store}\n")
        w = roost.init(root)
    workspace.use(w)
    (root / "features").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "features" / "defs.py").write_text(DEFS)
    schema = pa.schema([("user_id", pa.int64()), ("seq", pa.int64()), ("event_time", pa.timestamp("us", tz="UTC"))])
    pq.write_table(schema.empty_table(), root / "data" / "clicks.parquet")
    apply()


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


class _RedisFeed:
    """Events into the Redis Stream `clicks` (one pipelined XADD round trip per tick)."""

    def __init__(self, port: int) -> None:
        import redis

        self.r = redis.Redis(port=port)
        self.url = f"redis://127.0.0.1:{port}/0/clicks"

    def joined(self) -> bool:
        return bool(self.r.exists("clicks") and self.r.xinfo_groups("clicks"))

    def send(self, events: list[dict[str, Any]]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for ev in events:
            pipe.xadd("clicks", ev)
        pipe.execute()

    def lag(self) -> Any:
        return self.r.xinfo_groups("clicks")[0].get("lag")


class _KafkaFeed:
    """JSON events keyed by user into the Kafka topic `clicks` (librdkafka batches them; linger 1 ms)."""

    def __init__(self, servers: str) -> None:
        import confluent_kafka as ck

        self.p = ck.Producer({"bootstrap.servers": servers, "linger.ms": 1, "enable.idempotence": True})
        # Tansu 0.6 answers a waiting fetch only at its max wait, even when events arrive (Apache Kafka answers at
        # once): librdkafka's 500 ms default would be most of the latency measured (p50 167 ms vs 19 ms at 2,000/s)
        self.url = f"kafka://{servers}/clicks?{KAFKA_QUERY}"

    def joined(self) -> bool:
        return True  # the warm-up event waits for the group join

    def send(self, events: list[dict[str, Any]]) -> None:
        import json

        for ev in events:
            self.p.produce("clicks", key=str(ev["user_id"]).encode(), value=json.dumps(ev).encode())
        self.p.poll(0)

    def lag(self) -> Any:
        return None if self.p.flush(30) == 0 else "undelivered"


def run_freshness(
    rate: int = 10_000,
    seconds: float = 10.0,
    batch: int = 1000,
    online_store: str | None = None,
    source: str = "redis",
) -> dict[str, Any]:
    """Produce `rate` events/s for `seconds` into a Redis Stream (or a Kafka topic: `source="kafka"`) consumed by
    `roost features stream`; returns the produce → readable-online latencies of the probe events and the run's
    figures."""
    from datetime import UTC, datetime

    from roost.features.online_stores import open_online_store

    tmp = Path(tempfile.mkdtemp(prefix="roost-fresh-"))
    server = contextlib.ExitStack()
    port = int(urlsplit(server.enter_context(redis_server())).port or 0)  # bench/_servers.py's redis-server
    feed: Any = _KafkaFeed(server.enter_context(kafka_server())) if source == "kafka" else _RedisFeed(port)
    consumer = None
    log = None
    try:
        root = tmp / "ws"
        store_url = online_store.replace("{redis}", f"redis://127.0.0.1:{port}/1") if online_store else None
        _workspace(root, store_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO / "src"), os.environ.get("PYTHONPATH", "")] if p)
        log = open(tmp / "consumer.log", "wb")
        consumer = subprocess.Popen(
            [sys.executable, "-m", "roost", "features", "stream", "live_clicks"]
            + ["--source", feed.url, "--batch", str(batch), "--block-ms", "100"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        for _ in range(1200):  # wait until the consumer has joined its group
            if feed.joined():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"the consumer did not start: {(tmp / 'consumer.log').read_text()[-2000:]}")
        store = open_online_store()
        reader = _Reader(store)
        # warm-up: the consumer's first batch pays its imports, the Parquet writer and the store's connection
        # (1-3 s on a loaded machine); the clock starts once a warm-up event is readable online
        feed.send([{"user_id": WARM_ID, "seq": -1, "event_time": datetime.now(UTC).isoformat()}])
        warm_deadline = time.perf_counter() + 120
        while reader.read([WARM_ID])[0] is None:
            if time.perf_counter() > warm_deadline or consumer.poll() is not None:
                raise RuntimeError(f"the consumer did not warm up: {(tmp / 'consumer.log').read_text()[-2000:]}")
            time.sleep(0.01)
        tick, per_tick = 0.01, max(1, round(rate * 0.01))
        n_total = int(rate * seconds)
        probes: dict[int, float] = {}  # probe entity -> produce time (its seq is the entity id)
        lat: list[float] = []
        start = time.perf_counter()
        seq = 0
        while seq < n_total:
            target = start + (seq // per_tick) * tick
            while (now := time.perf_counter()) < target:
                _poll(reader, probes, lat)
                time.sleep(min(0.002, max(0.0, target - now)))
            sent = time.perf_counter()  # produce time: before the events are sent (an upper bound on latency)
            et = datetime.now(UTC).isoformat()
            mine, events = [], []
            for _ in range(per_tick):
                # probes get their own entity (id 10**9 + seq); the rest update 5,000 busy users
                uid = 10**9 + seq if seq % 50 == 0 else seq % 5000
                events.append({"user_id": uid, "seq": seq, "event_time": et})
                if seq % 50 == 0:
                    mine.append(uid)
                seq += 1
            feed.send(events)
            for uid in mine:
                probes[uid] = sent
        produce_s = time.perf_counter() - start
        deadline = time.perf_counter() + 60
        while probes and time.perf_counter() < deadline:
            _poll(reader, probes, lat)
            time.sleep(0.002)
        drained_s = time.perf_counter() - start
        lag_after = feed.lag()
        consumer.send_signal(signal.SIGTERM)
        rc = consumer.wait(timeout=120)
        return {
            "events": n_total,
            "rate_target": rate,
            "produce_s": produce_s,
            "drained_s": drained_s,
            "probes": len(lat),
            "missing": len(probes),
            "p50_ms": 1000 * _pct(lat, 0.5) if lat else float("nan"),
            "p99_ms": 1000 * _pct(lat, 0.99) if lat else float("nan"),
            "max_ms": 1000 * max(lat) if lat else float("nan"),
            "lag_after": lag_after,
            "source": source,
            "consumer_exit": rc,
            "online_store": store.url,
            "load": os.getloadavg(),
        }
    finally:
        if consumer is not None and consumer.poll() is None:
            os.killpg(consumer.pid, signal.SIGKILL)
        if log is not None:
            log.close()
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


class _Reader:
    """The online store's reader of the view, opened once the consumer has written its first batch."""

    def __init__(self, store: Any) -> None:
        self.store, self.reader = store, None

    def read(self, ids: list[int]) -> list[Any]:
        if self.reader is None:
            if not self.store.has_view("live_clicks"):
                return [None] * len(ids)
            self.reader = self.store.reader("live_clicks", {"user_id": "int64"}, {"seq": "int64"})
        return list(self.reader.read([ids])[0])


def _poll(reader: _Reader, probes: dict[int, float], lat: list[float]) -> None:
    """Read the probes not yet seen; record the latency of those now readable (their seq is stored)."""
    if not probes:
        return
    ids = list(probes)[:500]
    seen = reader.read(ids)
    now = time.perf_counter()
    for uid, v in zip(ids, seen, strict=True):
        if v is not None:
            lat.append(now - probes.pop(uid))


def report(res: dict[str, Any], label: str) -> str:
    """One summary line."""
    la = res["load"]
    return (
        f"freshness [{label}]: {res['events']:,} events at {res['rate_target']:,}/s "
        f"(produced in {res['produce_s']:.1f} s, all probes readable after {res['drained_s']:.1f} s): "
        f"p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, max {res['max_ms']:.0f} ms over "
        f"{res['probes']} probes ({res['missing']} never seen); consumer exit {res['consumer_exit']}; "
        f"load average {la[0]:.1f} {la[1]:.1f} {la[2]:.1f}"
    )


def _label(source: str, store: str) -> str:
    where = f"kafka stream on Tansu, ?{KAFKA_QUERY}" if source == "kafka" else "redis stream"
    return f"{where}, {store} online store"


def freshness_section(a: Any, work: Path, feast_py: Path | None) -> list[float]:
    """bench/streaming.py's `--only freshness` section: Redis Streams and Kafka, both online stores; returns no ratio
    (no peer runs this).

    Reads `a.rate`, `a.seconds` and `a.stream_batch` when the caller's parser defines them (defaults 10,000/s,
    10 s, 1,000)."""
    rate, seconds = getattr(a, "rate", 10_000), getattr(a, "seconds", 10.0)
    batch = getattr(a, "stream_batch", 1000)
    for src in getattr(a, "sources", ["redis", "kafka"]):
        for store in ("sqlite", "redis"):
            res = run_freshness(rate, seconds, batch, None if store == "sqlite" else "{redis}", src)
            print(report(res, _label(src, store)), flush=True)
            if res["p99_ms"] >= 1000:
                print(
                    f"  freshness [{src}, {store}]: p99 over the 1 s target (the consumer needs a core: see the load)"
                )
    return []


def main(argv: list[str] | None = None) -> None:
    """Run the freshness section alone: `python bench/_streaming_freshness.py [--rate N] [--seconds S]`."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--stores", nargs="+", default=["sqlite", "redis"], help="online stores to measure")
    p.add_argument("--sources", nargs="+", default=["redis"], choices=["redis", "kafka"], help="event sources")
    a = p.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    for src in a.sources:
        for s in a.stores:
            res = run_freshness(a.rate, a.seconds, a.batch, None if s == "sqlite" else "{redis}", src)
            print(report(res, _label(src, s)), flush=True)


if __name__ == "__main__":
    main()
