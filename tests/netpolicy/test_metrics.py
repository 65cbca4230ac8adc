"""GET /metrics of the servers without a registry of their own: ConnStats in Prometheus text, read back with
prometheus_client's own parser (the format a scraper reads), with the names roost serve uses."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from roost.netpolicy.limits import ConnStats
from roost.netpolicy.metrics import exposition


def _samples(stats: ConnStats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, ctype = exposition(stats)
    assert ctype.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_counts_read_back_by_a_prometheus_parser() -> None:
    stats = ConnStats()
    for _ in range(5):
        stats.opened()
    stats.closed()
    for reason in ("cap", "cap", "cap", "fd"):
        stats.reject(reason)
    for phase in ("header", "header", "body"):
        stats.timeout(phase)
    stats.idle()
    got = _samples(stats)
    assert got[("roost_connections_open", ())] == 4
    assert got[("roost_connections_rejected_total", (("reason", "cap"),))] == 3
    assert got[("roost_connections_rejected_total", (("reason", "fd"),))] == 1
    assert got[("roost_requests_timed_out_total", (("phase", "header"),))] == 2
    assert got[("roost_requests_timed_out_total", (("phase", "body"),))] == 1
    assert got[("roost_connections_idle_closed_total", ())] == 1


def test_a_fresh_server_exports_zeros_for_every_series() -> None:
    got = _samples(ConnStats())
    assert got[("roost_connections_open", ())] == 0
    assert {k for k in got if k[0] == "roost_connections_rejected_total"} == {
        ("roost_connections_rejected_total", (("reason", "cap"),)),
        ("roost_connections_rejected_total", (("reason", "fd"),)),
    }
    assert all(v == 0 for v in got.values())
