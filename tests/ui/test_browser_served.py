"""End to end in Chromium: a real `roost serve` registers its fleet, its logged traffic shows on the model page with
the counts the test sent, and the fleet shows stopped after a clean shutdown and gone after a kill."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.ui.test_browser import browser, ui_server  # noqa: F401 - fixtures shared with the main browser test

sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))  # servekit: packages and the server harness

from servekit import Server, breast_cancer, logreg_package

from roost.registry import sketch

pytestmark = pytest.mark.browser
FAST = {"ROOST_FLEET_HEARTBEAT_S": "2", "ROOST_REQUEST_LOG_ROTATE_S": "0.5"}  # gone after 6 s
METRICS = {
    "accuracy": 0.9,
    "brier": 0.08,
    "f1": 0.88,
    "log_loss": 0.3,
    "precision": 0.9,
    "test_roc_auc": 0.97,
    "roc_auc": 0.96,
}


@pytest.fixture
def served_model(populated, tmp_path: Path) -> dict:
    """The populated workspace plus model `bc` (binary, with metrics) registered and aliased prod."""
    import roost
    from roost.registry import modelreg
    from roost.registry.store import default_store

    pkg = logreg_package(tmp_path / "bc", meta_extra={"metrics": METRICS})
    v = roost.register_model(None, "bc", str(pkg))
    modelreg.set_alias(default_store(), "bc", v.version, "prod")
    return {**populated, "version": str(v.version)}


def _wait_for(page, base: str, test, what: str, timeout: float = 60.0) -> None:
    """Reload the model page until `test(page)` holds (the fleet rolls up its logs every heartbeat)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(base + "/models/bc")
        if test(page):
            return
        assert time.monotonic() < deadline, f"{what}: not seen on the model page in {timeout} s"
        time.sleep(0.5)


def test_fleet_live_traffic_then_stopped_and_gone(served_model, ui_server, browser, tmp_path: Path) -> None:  # noqa: F811
    ws = served_model["ws"]
    X, _, cols = breast_cancer()
    logs = tmp_path / "reqlogs"
    srv = Server(
        ["bc@prod"], "--log-requests", "1", "--log-dir", str(logs), cwd=ws.root, log=tmp_path / "s.log", env=FAST
    ).wait_ready()
    sent_rows = 0
    try:
        with srv.client() as c:
            for i in range(23):
                rows = 1 + i % 4
                body = {"instances": [dict(zip(cols, map(float, X[j]))) for j in range(i, i + rows)]}
                assert c.post("/v1/models/bc:predict", json=body).status_code == 200
                sent_rows += rows
            for _ in range(2):  # a missing input: an error answer, counted but never logged
                assert c.post("/v1/models/bc:predict", json={"instances": [{"nope": 1.0}]}).status_code == 400
        page = browser.new_page()
        base = ui_server["base"]

        def traffic_in(p) -> bool:
            cell = p.query_selector(f"#traffic tr[data-version='{served_model['version']}'] [data-requests]")
            errs = p.query_selector(f"#traffic tr[data-version='{served_model['version']}'] [data-errors]")
            return bool(
                cell
                and errs
                and cell.get_attribute("data-requests") == "23"
                and errs.get_attribute("data-errors") == "2"
            )

        _wait_for(page, base, traffic_in, "23 requests and 2 errors")
        row = page.locator("#fleets tr[data-state='live']")
        assert row.count() == 1
        assert f"127.0.0.1:{srv.port}" in row.inner_text()
        assert f"v{served_model['version']} primary 100 %" in row.inner_text()
        tr = page.locator(f"#traffic tr[data-version='{served_model['version']}']")
        assert tr.locator("td").nth(3).inner_text() == str(sent_rows)
        # latency: within the logged latencies, to the sketch's bucket
        df = pd.concat([pd.read_parquet(p) for p in sorted(logs.rglob("*.parquet"))])
        lat = np.sort(df.drop_duplicates("_request_id")["_latency_ms"].to_numpy(np.float64))
        for q, attr in ((0.5, "data-p50"), (0.99, "data-p99")):
            shown = float(tr.locator(f"[{attr}]").get_attribute(attr))
            lo, hi = sketch.bounds(sketch.quantile_key(sketch.histogram(lat), q))
            assert lo <= lat[math.ceil(q * len(lat)) - 1] < hi and lo <= shown < hi
            assert lat[0] / 1.07 <= shown <= lat[-1] * 1.07
        page.wait_for_selector("#traffic-charts[data-ready='1'] figure.chart svg path.series")
        captions = page.locator("#traffic-charts figcaption").all_inner_texts()
        assert captions[:3] == ["requests / min", "latency p50 / p99 (ms)", "error rate"]
        assert any(c.startswith("prediction (probability)") for c in captions)
        # the headline metric leads the versions table; the picker shows a hidden one and remembers it
        heads = page.locator("#versions thead th[data-col]:visible").all_inner_texts()
        assert heads[:2] == ["test_roc_auc", "roc_auc"]
        page.goto(base + "/models")
        assert "live 1 fleet" in page.locator("#models tr", has_text="bc").inner_text()
        page.goto(base + "/models/bc")
        page.click("#metric-picker summary")
        page.check("#metric-picker input[value='precision']")
        page.reload()
        assert "precision" in page.locator("#versions thead th[data-col]:visible").all_inner_texts()
    finally:
        assert srv.stop() == 0
    _wait_for(page, base, lambda p: p.locator("#fleets tr[data-state='stopped']").count() == 1, "stopped fleet")
    assert page.locator("#fleets tr[data-state='live']").count() == 0

    killed = Server(["bc@prod"], cwd=ws.root, log=tmp_path / "k.log", env=FAST).wait_ready()
    try:
        _wait_for(page, base, lambda p: p.locator("#fleets tr[data-state='live']").count() == 1, "second fleet")
        os.killpg(killed.proc.pid, signal.SIGKILL)  # no clean shutdown: the heartbeat just stops
        killed.proc.wait(10)
        _wait_for(page, base, lambda p: p.locator("#fleets tr[data-state='gone']").count() == 1, "gone fleet", 60)
    finally:
        killed.stop()


def test_headline_metric_is_the_first_metric_column(served_model) -> None:
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app()) as c:
        html = c.get("/models/bc").text
    first = html.split('<th class="num metric', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert first == "test_roc_auc"
    assert "No serving fleet has registered this model" in html
