"""The consumer's counters and `GET /metrics` (Prometheus text): throughput, errors, last event age, group lag."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["StreamStats", "MetricsServer", "exposition"]

RATE_WINDOW_S = 10.0


@dataclass
class StreamStats:
    """What one consumer has done, updated after each batch (read from the metrics thread)."""

    view: str
    source: str
    group: str
    pushed: int = 0  # events written online + offline and acked
    dead: int = 0  # events sent to the dead-letter stream
    batches: int = 0
    errors: int = 0  # failed writes (retried)
    redelivered: int = 0
    last_event_time: float | None = None  # newest event time written (epoch seconds)
    _window: collections.deque[tuple[float, int]] = field(default_factory=collections.deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def batch_done(self, pushed: int, dead: int, newest: float | None) -> None:
        """Count one acked batch."""
        now = time.monotonic()
        with self._lock:
            self.pushed += pushed
            self.dead += dead
            self.batches += 1
            if newest is not None and (self.last_event_time is None or newest > self.last_event_time):
                self.last_event_time = newest
            self._window.append((now, pushed + dead))
            while self._window and self._window[0][0] < now - RATE_WINDOW_S:
                self._window.popleft()

    def rate(self) -> float:
        """Events per second over the last RATE_WINDOW_S seconds."""
        now = time.monotonic()
        with self._lock:
            n = sum(c for t, c in self._window if t >= now - RATE_WINDOW_S)
        return n / RATE_WINDOW_S


class _Collector:
    def __init__(self, stats: StreamStats, lag: Callable[[], dict[str, float]]) -> None:
        self.stats, self.lag = stats, lag

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        labels = ["view", "source", "group"]
        lv = [s.view, s.source, s.group]

        def counter(name: str, doc: str, value: float) -> Any:
            m = CounterMetricFamily(name, doc, labels=labels)
            m.add_metric(lv, value)
            return m

        def gauge(name: str, doc: str, value: float) -> Any:
            m = GaugeMetricFamily(name, doc, labels=labels)
            m.add_metric(lv, value)
            return m

        yield counter("roost_stream_events", "Events written online and offline, then acked", s.pushed)
        yield counter("roost_stream_dead_letters", "Bad events sent to the dead-letter stream", s.dead)
        yield counter("roost_stream_batches", "Batches written and acked", s.batches)
        yield counter("roost_stream_errors", "Failed batch writes (retried, never acked)", s.errors)
        yield counter("roost_stream_redelivered", "Events delivered again after a restart", s.redelivered)
        yield gauge("roost_stream_events_per_second", f"Events per second over {RATE_WINDOW_S:g} s", s.rate())
        age = float("nan") if s.last_event_time is None else time.time() - s.last_event_time
        yield gauge("roost_stream_last_event_age_seconds", "Now minus the newest written event time", age)
        lag = self.lag()
        yield gauge("roost_stream_lag", "Events in the stream not yet delivered to the group", lag["lag"])
        yield gauge("roost_stream_pending", "Events delivered to the group and not yet acked", lag["pending"])


def exposition(stats: StreamStats, lag: Callable[[], dict[str, float]]) -> bytes:
    """The Prometheus text of `stats` and of the group's lag (read at call time)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(stats, lag))
    return bytes(generate_latest(registry))


class MetricsServer:
    """A small HTTP server answering GET /metrics and /health on `host:port` (loopback by default), in a thread."""

    def __init__(
        self, stats: StreamStats, lag: Callable[[], dict[str, float]], port: int, host: str = "127.0.0.1"
    ) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST

        from roost.netpolicy.hosts import allowed_hosts, host_allowed

        allowed = allowed_hosts(host)

        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_GET(self) -> None:
                if not host_allowed(self.headers.get("Host"), allowed):
                    self._send(400, b"host not allowed\n", "text/plain")
                elif self.path.split("?")[0] == "/metrics":
                    self._send(200, exposition(stats, lag), CONTENT_TYPE_LATEST)
                elif self.path == "/health":
                    self._send(200, b"ok\n", "text/plain")
                else:
                    self._send(404, b"not found: GET /metrics or /health\n", "text/plain")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: library code logs via logging
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="roost-stream-metrics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
