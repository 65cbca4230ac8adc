"""roost.demo.send_traffic (the demo's traffic for the model page) against a real server's own counters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from servekit import Server, breast_cancer


def test_send_traffic_counts_what_the_server_answered(pkgs: dict[str, Path], tmp_path: Path) -> None:
    from roost.demo import send_traffic

    X, _, cols = breast_cancer()
    srv = Server([f"bc={pkgs['bc']}"], log=tmp_path / "s.log").wait_ready()
    try:
        sent = send_traffic(srv.url, "bc", pd.DataFrame(X, columns=cols), requests=15, bad=3)
        with srv.client() as c:
            text = c.get("/metrics").text
    finally:
        srv.stop()
    req = {
        s.labels["code"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "roost_requests_total" and s.labels.get("model") == "bc"
    }
    assert sent["requests"] == 15 == req["200"]
    assert sent["errors"] == 3 == req["400"]
    assert 15 <= sent["rows"] <= 15 * 8
