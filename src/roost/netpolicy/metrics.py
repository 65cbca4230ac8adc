"""`GET /metrics` of a server's connection counts, for the servers without a metrics registry of their own (the UI,
the tuning service, the index server): the same names as `roost serve`'s, in Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from roost.netpolicy.limits import ConnStats


class _ConnCollector:
    """A Prometheus collector that reads one ConnStats at scrape time."""

    def __init__(self, stats: ConnStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        """The four connection metrics, as roost serve names them."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.stats
        yield GaugeMetricFamily("roost_connections_open", "Open client connections under the cap", value=s.open)
        rejected = CounterMetricFamily(
            "roost_connections_rejected",
            "Connections refused over the cap (503) or with no descriptor",
            labels=["reason"],
        )
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        timed_out = CounterMetricFamily(
            "roost_requests_timed_out", "Requests cut for slow headers or body (408)", labels=["phase"]
        )
        for phase, n in sorted(s.timed_out.items()):
            timed_out.add_metric([phase], n)
        yield timed_out
        yield CounterMetricFamily(
            "roost_connections_idle_closed", "Idle keep-alive connections closed", value=s.idle_closed
        )


def exposition(stats: ConnStats) -> tuple[bytes, str]:
    """(body, content type) of the Prometheus text of `stats`."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ConnCollector(stats))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metrics_route(path: str = "/metrics") -> Any:
    """A Starlette route answering the connection counts kept in `app.state.conn_stats`."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def metrics(request: Request) -> Response:
        body, ctype = exposition(request.app.state.conn_stats)
        return Response(body, media_type=ctype)

    return Route(path, metrics, methods=["GET"])
