"""In Chromium: the model page's monitoring charts (one dot per monitor run, the threshold line), and the planted
skew on the feature view page and the model page."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from skew_scenario import SCORE_MISMATCH_RATE, planted

from .mon_fixtures import drift_frames, register_model
from .test_browser import ENV_CLEAN, _free_port, browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def monitored(ws: Any, tmp_path: Path, cli: Any) -> dict[str, Any]:
    """Model m: three drift checks and two skew checks of the planted scenario, recorded as monitor runs."""
    register_model(tmp_path)
    planted(ws.root, tmp_path / "logs")
    thresholds = {}
    for seed, shift in enumerate((0.0, 0.6, 1.2)):
        ref, cur = drift_frames(shift, seed=seed)
        ref.to_parquet(tmp_path / f"r{seed}.parquet")
        cur.to_parquet(tmp_path / f"c{seed}.parquet")
        code, out, err = cli(
            "monitor", "drift", "-r", str(tmp_path / f"r{seed}.parquet"), "-c", str(tmp_path / f"c{seed}.parquet"),
            "--model", "m", "--json",
        )  # fmt: skip
        assert code == 0, err
        thresholds = {f["feature"]: f["threshold"] for f in json.loads(out)["features"]}
    for _ in range(2):
        code, out, _ = cli("monitor", "skew", str(tmp_path / "logs"), "--model", "m")
        assert code == 1, out
    return {"ws": ws, "thresholds": thresholds}


@pytest.fixture
def mon_server(monitored: dict[str, Any]) -> Any:
    port = _free_port()
    ws = monitored["ws"]
    log = open(ws.state_dir / "ui-mon.log", "wb")
    env = {**ENV_CLEAN, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(port)],
        cwd=ws.root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # a hang guard only
    while True:
        assert time.monotonic() < deadline, (ws.state_dir / "ui-mon.log").read_text()
        try:
            if httpx.get(base + "/models", timeout=10).status_code == 200:
                break
        except httpx.HTTPError:
            assert proc.poll() is None, (ws.state_dir / "ui-mon.log").read_text()
            time.sleep(0.2)
    yield {"base": base, **monitored}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    log.close()


def test_monitoring_charts_and_planted_skew_in_chromium(mon_server: dict[str, Any], browser: Any) -> None:  # noqa: F811
    base = mon_server["base"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/models/m")
    page.wait_for_selector("#drift-charts[data-ready='1']")
    figs = page.locator("#drift-charts figure.chart")
    assert figs.count() == 3
    for i in range(3):
        fig = figs.nth(i)
        feature = fig.get_attribute("data-metric").removeprefix("drift.score.")
        assert fig.locator("circle.series-point").count() == 3  # one dot per monitor run
        assert int(fig.locator("path.series").get_attribute("data-points")) == 3
        line = fig.locator("g.threshold")
        assert line.count() == 1
        assert float(line.get_attribute("data-value")) == pytest.approx(mon_server["thresholds"][feature])
    # the planted skew on the model page: the latest table and a chart per served feature with its threshold
    row = page.locator("#skew-latest tr[data-ref='uv:v_f']")
    assert float(row.get_attribute("data-rate")) == pytest.approx(SCORE_MISMATCH_RATE)
    assert "80.00%" in row.inner_text()
    page.wait_for_selector("#skew-charts[data-ready='1']")
    assert page.locator("#skew-charts figure.chart").count() == 3
    assert page.locator("#skew-charts g.threshold").count() == 3
    # ... and on the view's page, linked from the model page
    page.click("#skew-latest tr[data-ref='uv:v_f'] a")
    page.wait_for_url("**/features/uv")
    fv = page.locator("#fv-skew tr[data-ref='uv:v_f']")
    assert fv.get_attribute("data-model") == "m" and "80.00%" in fv.inner_text()
    page.wait_for_selector("#fv-skew-charts[data-ready='1']")
    chart = page.locator("#fv-skew-charts figure.chart[data-metric='skew.rate.uv:v_f']")
    assert chart.locator("circle.series-point").count() == 2 and chart.locator("g.threshold").count() == 1
    assert page.locator("#fv-fields tr[data-field='v_f'] td.dtype").inner_text() == "float64"
    assert errors == []
