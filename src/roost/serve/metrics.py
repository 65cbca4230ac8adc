"""Prometheus metrics of the serving fleet (aggregated across worker processes) and its alerting rules."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from roost.netpolicy.limits import ConnStats

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
REQ_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# a fleet worker's event loop counts its requests in local numbers and writes them to the shared metric files at
# most this often (each write costs ~1-2 µs; a request made 10); 0 writes every update at once
FLUSH_S = float(os.environ.get("ROOST_METRICS_FLUSH_MS", "100")) / 1000.0


class Metrics:
    """The serving metrics; in a fleet (PROMETHEUS_MULTIPROC_DIR set) every worker's values are summed."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiproc_dir = os.environ.get(MULTIPROC_ENV)
        self.registry = CollectorRegistry()
        reg: Any = None if self.multiproc_dir else self.registry
        self.requests = Counter(
            "roost_requests_total",
            "Requests answered, by model, protocol and HTTP status",
            ["model", "protocol", "code"],
            registry=reg,
        )
        self.latency = Histogram(
            "roost_request_latency_seconds",
            "Request latency inside the server",
            ["model", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.errors = Counter(
            "roost_errors_total", "Error responses by model and HTTP status", ["model", "code"], registry=reg
        )
        self.batch_rows = Histogram(
            "roost_batch_rows", "Rows per model run (dynamic batches)", ["model"], buckets=ROW_BUCKETS, registry=reg
        )
        self.batch_requests = Histogram(
            "roost_batch_requests", "Requests merged into one model run", ["model"], buckets=REQ_BUCKETS, registry=reg
        )
        self.version_loaded = Gauge(
            "roost_model_version_loaded",
            "1 for each model version a worker serves",
            ["model", "version"],
            multiprocess_mode="livemax",
            registry=reg,
        )
        self.swaps = Counter("roost_model_swaps_total", "Hot swaps to a new model version", ["model"], registry=reg)
        self.inflight = Gauge(
            "roost_inflight_requests", "Requests being handled now", multiprocess_mode="livesum", registry=reg
        )
        self.logged_rows = Counter(
            "roost_request_log_rows_total", "Rows written to the request log", ["model"], registry=reg
        )
        self.log_dropped_rows = Counter(
            "roost_request_log_dropped_rows_total",
            "Sampled rows the request log could not write (write failed or queue full)",
            ["model"],
            registry=reg,
        )
        self.version_requests = Counter(
            "roost_model_version_requests_total",
            "Requests a model version answered (a canary split shows as two versions of one model)",
            ["model", "version"],
            registry=reg,
        )
        self.shadow_requests = Counter(
            "roost_shadow_requests_total",
            "Requests mirrored to a shadow version: mirrored, dropped (queue full or shutting down), failed, or "
            "cancelled (still queued or running when the shutdown grace ran out)",
            ["model", "version", "outcome"],
            registry=reg,
        )
        self.shadow_failures = Counter(
            "roost_shadow_failures_total",
            "Shadow mirrors that failed, by the error's kind (its exception class, e.g. onnxruntime's InvalidArgument)",
            ["model", "version", "error"],
            registry=reg,
        )
        self.worker_restarts = Counter("roost_worker_restarts_total", "Workers restarted after a crash", registry=reg)
        self.connections_open = Gauge(
            "roost_connections_open", "Client connections open now", multiprocess_mode="livesum", registry=reg
        )
        self.connections_rejected = Counter(
            "roost_connections_rejected_total",
            "Connections refused: over --max-connections (answered 503), or no descriptor to spare (closed)",
            ["reason"],
            registry=reg,
        )
        self.requests_timed_out = Counter(
            "roost_requests_timed_out_total",
            "Requests cut for arriving too slowly (408 and close): their headers or their body",
            ["phase"],
            registry=reg,
        )
        self.connections_idle_closed = Counter(
            "roost_connections_idle_closed_total", "Idle connections closed after --keepalive", registry=reg
        )
        self._req: dict[tuple[str, str, str], Any] = {}
        self._lat: dict[tuple[str, str], Any] = {}
        self._batch: dict[str, tuple[Any, Any]] = {}
        self._answered: dict[tuple[str, str], Any] = {}
        # batched updates (fleet workers: see batch_on_this_thread and flush)
        self.flush_s = FLUSH_S if self.multiproc_dir else 0.0
        self._loop_thread: int | None = None
        self._counts: dict[Any, float] = {}  # counter / gauge child -> increment not written yet
        self._hists: dict[Any, list[float]] = {}  # histogram child -> the values not observed yet
        self._timer: asyncio.TimerHandle | None = None

    # ---- batched updates ------------------------------------------------------------------------------
    def batch_on_this_thread(self) -> None:
        """(On a fleet worker's event loop) count this thread's updates locally and write them at most every
        flush_s seconds; other threads (gRPC, model threads) keep writing at once. Scrapes wait flush_s (app)."""
        if self.flush_s > 0:
            self._loop_thread = threading.get_ident()

    def _add(self, child: Any, amount: float = 1.0) -> None:
        """Increment a counter or gauge child (batched on the event loop's thread)."""
        if threading.get_ident() != self._loop_thread:
            child.inc(amount)
            return
        counts = self._counts
        counts[child] = counts.get(child, 0.0) + amount
        if self._timer is None:
            self._arm()

    def _observe(self, child: Any, value: float) -> None:
        """Observe a value in a histogram child (batched on the event loop's thread)."""
        if threading.get_ident() != self._loop_thread:
            child.observe(value)
            return
        pending = self._hists.get(child)
        if pending is None:
            pending = self._hists[child] = []
            if self._timer is None:
                self._arm()
        pending.append(value)

    def enter(self) -> None:
        """A request is being handled (roost_inflight_requests + 1)."""
        self._add(self.inflight, 1.0)

    def leave(self) -> None:
        """A request was answered (roost_inflight_requests - 1)."""
        self._add(self.inflight, -1.0)

    def _arm(self) -> None:
        """Flush after flush_s (at once when no event loop runs on this thread)."""
        try:
            self._timer = asyncio.get_running_loop().call_later(self.flush_s, self.flush)
        except RuntimeError:
            self.flush()

    def flush(self) -> None:
        """Write the batched updates to the shared metric files."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._counts = self._counts, {}
        hists, self._hists = self._hists, {}
        for child, n in counts.items():
            if n:
                child.inc(n)
        for child, values in hists.items():
            for value in values:  # prometheus_client has no public bulk observe: one observe per value, off the request
                child.observe(value)

    def observe(self, model: str, protocol: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        code = str(status)
        key = (model, protocol, code)
        c = self._req.get(key)
        if c is None:
            c = self._req[key] = self.requests.labels(model, protocol, code)
        self._add(c)
        lk = (model, protocol)
        h = self._lat.get(lk)
        if h is None:
            h = self._lat[lk] = self.latency.labels(model, protocol)
        self._observe(h, seconds)
        if status >= 400:
            self._add(self.errors.labels(model, code))

    def answered(self, model: str, version: str) -> None:
        """Count one request answered by `version` of `model`."""
        key = (model, version)
        c = self._answered.get(key)
        if c is None:
            c = self._answered[key] = self.version_requests.labels(model, version)
        self._add(c)

    def shadow(self, model: str, version: str, outcome: str) -> None:
        """Count one shadow mirror outcome of `model`'s shadow `version`."""
        self.shadow_requests.labels(model, version, outcome).inc()

    def shadow_failed(self, model: str, version: str, error: str) -> None:
        """Count one failed mirror to `model`'s shadow `version`, by error kind."""
        self.shadow_requests.labels(model, version, "failed").inc()
        self.shadow_failures.labels(model, version, error).inc()

    def batch(self, model: str, rows: int, requests: int) -> None:
        """Record one model run of `rows` rows merged from `requests` requests."""
        pair = self._batch.get(model)
        if pair is None:
            pair = self._batch[model] = (self.batch_rows.labels(model), self.batch_requests.labels(model))
        self._observe(pair[0], rows)
        self._observe(pair[1], requests)

    def loaded(self, model: str, version: str, old_version: str | None = None) -> None:
        """Mark `version` of `model` as served (and the version it replaced as not served)."""
        if old_version is not None and old_version != version:
            self.version_loaded.labels(model, old_version).set(0)
            self.swaps.labels(model).inc()
        self.version_loaded.labels(model, version).set(1)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format of all metrics (all workers' when in a fleet)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.flush()
        if self.multiproc_dir:
            from prometheus_client.multiprocess import MultiProcessCollector

            reg = CollectorRegistry()
            MultiProcessCollector(reg, path=self.multiproc_dir)  # type: ignore[no-untyped-call]  # untyped library
            return generate_latest(reg), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ConnMetrics(ConnStats):
    """Connection counts exported as the fleet's roost_connections_* and roost_requests_timed_out_total."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.m = metrics

    def opened(self) -> None:
        """A connection was accepted under the cap."""
        super().opened()
        self.m.connections_open.inc()

    def closed(self) -> None:
        """An accepted connection ended."""
        super().closed()
        self.m.connections_open.dec()

    def reject(self, reason: str) -> None:
        """A connection was refused ("cap": answered 503, "fd": closed)."""
        super().reject(reason)
        self.m.connections_rejected.labels(reason).inc()

    def timeout(self, phase: str) -> None:
        """A request was cut in its "header" or "body" phase."""
        super().timeout(phase)
        self.m.requests_timed_out.labels(phase).inc()

    def idle(self) -> None:
        """An idle connection was closed."""
        super().idle()
        self.m.connections_idle_closed.inc()


def alert_rules(error_rate: float = 0.01, p99_seconds: float = 0.1, window: str = "5m") -> dict[str, Any]:
    """Prometheus alerting rules for a roost fleet: server error rate, p99 latency, crash loops, no model."""

    def ratio(codes: str) -> str:
        return (
            f'sum by (model) (rate(roost_requests_total{{code=~"{codes}"}}[{window}]))'
            f" / clamp_min(sum by (model) (rate(roost_requests_total[{window}])), 1e-9)"
        )

    return {
        "groups": [
            {
                "name": "roost-serving",
                "rules": [
                    {
                        "alert": "RoostHighErrorRate",
                        "expr": f"{ratio('5..')} > {error_rate}",
                        "for": "5m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "roost model {{ $labels.model }}: more than "
                            f"{error_rate:.0%} of requests fail with a server error",
                            "description": "5xx ratio over " + window + " is {{ $value | humanizePercentage }}.",
                        },
                    },
                    {
                        "alert": "RoostHighClientErrorRate",
                        "expr": f"{ratio('4..')} > 0.2",
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "roost model {{ $labels.model }}: over 20% of requests are rejected (4xx)",
                            "description": "a client may send the wrong features; 4xx ratio is "
                            "{{ $value | humanizePercentage }}.",
                        },
                    },
                    {
                        "alert": "RoostHighP99Latency",
                        "expr": "histogram_quantile(0.99, sum by (le, model) "
                        f"(rate(roost_request_latency_seconds_bucket[{window}])))"
                        f" > {p99_seconds}",
                        "for": "5m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "roost model {{ $labels.model }}: p99 latency above "
                            f"{p99_seconds * 1000:g} ms",
                            "description": "p99 over " + window + " is {{ $value | humanizeDuration }}.",
                        },
                    },
                    {
                        "alert": "RoostWorkerCrashLoop",
                        "expr": "increase(roost_worker_restarts_total[10m]) > 3",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "roost serving workers keep crashing ({{ $value }} restarts in 10 min)"
                        },
                    },
                    {
                        "alert": "RoostNoModelLoaded",
                        "expr": "max(roost_model_version_loaded) < 1",
                        "for": "2m",
                        "labels": {"severity": "critical"},
                        "annotations": {"summary": "a roost fleet serves no model version"},
                    },
                ],
            }
        ]
    }


def write_alert_rules(path: str, error_rate: float = 0.01, p99_seconds: float = 0.1) -> None:
    """Write the alerting rules as a Prometheus rules YAML file."""
    import yaml

    with open(path, "w") as fh:
        yaml.safe_dump(alert_rules(error_rate, p99_seconds), fh, sort_keys=False, width=200)
