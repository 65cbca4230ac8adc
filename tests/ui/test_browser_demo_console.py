"""The production console on the demo workspace (the session's one `demo` fixture), in Chromium, content checked
against independent references: the request logs on disk, the registry read in a subprocess, a real `roost serve`.

- the demo's fleets show stopped (the demo stops its servers) with the traffic its request logs hold; a fleet the
  test starts in the workspace shows live, then stopped after its clean shutdown;
- the planted skew (user_live left stale online, item_live fresh) on the model page and the feature view page;
- the drift chart: one point per drift monitor run in the registry;
- every page of the demo opens with its heading, no script error and no error page.
"""

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
from tests.ui.test_browser import _free_port, browser  # noqa: F401 - the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LIVE = "engagement-live"  # the feature-store model the demo serves by entity id, skew-checked and drift-monitored
FAST = {"ROOST_FLEET_HEARTBEAT_S": "1"}


def _registry(ws: Path, code: str) -> Any:
    """Run `code` (which prints one JSON line) in a subprocess on the workspace: the registry, not the UI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ws, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _logged(ws: Path, model: str) -> dict[str, int]:
    """Requests and rows in the model's request-log files (the parquet files the servers wrote)."""
    import pandas as pd

    files = sorted((ws / ".roost" / "request_logs" / model).glob("*/*.parquet"))
    df = pd.concat([pd.read_parquet(f, columns=["_request_id"]) for f in files]) if files else None
    return {"requests": 0 if df is None else df["_request_id"].nunique(), "rows": 0 if df is None else len(df)}


def _until(page: Any, url: str, test: Any, what: str, timeout: float = 60.0) -> None:
    """Reload `url` until `test(page)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if test(page):
            return
        assert time.monotonic() < deadline, f"{what}: not seen on {url} in {timeout} s"
        time.sleep(0.5)


def test_fleets_traffic_then_live_and_stopped(demo, browser) -> None:  # noqa: F811
    ws, base = demo
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    for model in ("engagement", LIVE):  # the demo served both, then stopped its servers
        page.goto(f"{base}/models/{model}")
        assert page.locator("#fleets tr[data-state='live']").count() == 0, model
        assert page.locator("#fleets tr[data-state='stopped']").count() >= 1, model
        want = _logged(ws, model)
        assert want["requests"] > 0, f"the demo logs {model}'s requests"
        cells = page.locator("#traffic tr[data-version] [data-requests]")
        shown = sum(int(cells.nth(i).get_attribute("data-requests")) for i in range(cells.count()))
        assert shown == want["requests"], model  # errors are answered but never logged: counted apart
    page.goto(f"{base}/models/engagement")
    errors = page.locator("#traffic tr[data-version] [data-errors]")
    assert sum(int(errors.nth(i).get_attribute("data-errors")) for i in range(errors.count())) == 2  # send_traffic's
    page.wait_for_selector("#traffic-charts[data-ready='1'] figure.chart svg path.series")

    # a fleet started here shows live with its address, then stopped after a clean shutdown
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}, **FAST}
    log = open(ws / "serve-test.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "serve", "engagement@prod", "--port", str(port)],
        cwd=ws,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stopped_before = page.locator("#fleets tr[data-state='stopped']").count()
    try:
        row = f"#fleets tr[data-state='live']:has-text('127.0.0.1:{port}')"
        _until(page, f"{base}/models/engagement", lambda p: p.locator(row).count() == 1, "the live fleet", 120)
        page.goto(f"{base}/models")
        assert "live 1 fleet" in page.locator("#models tr", has_text="engagement").first.inner_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        log.close()
    _until(
        page,
        f"{base}/models/engagement",
        lambda p: (
            p.locator("#fleets tr[data-state='live']").count() == 0
            and p.locator("#fleets tr[data-state='stopped']").count() == stopped_before + 1
        ),
        "the stopped fleet",
    )
    page.close()


def _skew_reference(ws: Path) -> dict[str, float]:
    """Mismatch rate per view:field, recomputed now by roost.monitor.skew over the demo's request logs (a subprocess;
    the pages show what the demo's scheduled skew check recorded)."""
    code = (
        "import json\n"
        "from roost.monitor.skew import skew\n"
        f"rep = skew('.roost/request_logs', model='{LIVE}')\n"
        "print(json.dumps({f.ref: f.mismatch_rate for f in rep.features}))\n"
    )
    rates: dict[str, float] = _registry(ws, code)
    return rates


def test_planted_skew_on_the_model_and_feature_view_pages(demo, browser) -> None:  # noqa: F811
    ws, base = demo
    want = _skew_reference(ws)
    stale = {ref for ref, rate in want.items() if rate > 0}
    assert stale and all(ref.startswith("user_live:") for ref in stale), want  # the demo left user_live stale
    assert any(ref.startswith("item_live:") for ref in want) and all(
        want[ref] == 0 for ref in want if ref.startswith("item_live:")
    )
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{base}/models/{LIVE}")
    rows = page.locator("#skew-latest tr[data-ref]")
    shown = {
        rows.nth(i).get_attribute("data-ref"): float(rows.nth(i).get_attribute("data-rate"))
        for i in range(rows.count())
    }
    assert shown == pytest.approx(want)
    bad = page.locator("#skew-latest tr.bad[data-ref]")
    assert {bad.nth(i).get_attribute("data-ref") for i in range(bad.count())} == stale
    page.wait_for_selector("#skew-charts[data-ready='1'] figure.chart")

    page.goto(f"{base}/features/user_live")
    fv = page.locator(f"#fv-skew tr[data-model='{LIVE}']")
    on_view = {
        fv.nth(i).get_attribute("data-ref"): float(fv.nth(i).get_attribute("data-rate")) for i in range(fv.count())
    }
    assert on_view == pytest.approx({r: v for r, v in want.items() if r.startswith("user_live:")})
    assert any(v > 0 for v in on_view.values())
    page.goto(f"{base}/features/item_live")
    fv = page.locator(f"#fv-skew tr[data-model='{LIVE}']")
    assert fv.count() >= 1 and all(float(fv.nth(i).get_attribute("data-rate")) == 0 for i in range(fv.count()))
    page.close()


def test_drift_chart_has_one_point_per_monitor_run(demo, browser) -> None:  # noqa: F811
    ws, base = demo
    code = (
        "import json, roost\n"
        f"rs = roost.search_runs(\"tags.roost.monitor.model = '{LIVE}' and tags.roost.monitor.check = 'drift'\")\n"
        "print(json.dumps(len(rs)))\n"
    )
    runs = _registry(ws, code)
    assert runs >= 1, "the demo schedules and runs a drift check of the live model"
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(f"{base}/models/{LIVE}")
    page.wait_for_selector("#drift-charts[data-ready='1']")
    figs = page.locator("#drift-charts figure.chart")
    assert figs.count() >= 1
    for i in range(figs.count()):
        assert figs.nth(i).locator("circle.series-point").count() == runs
        assert figs.nth(i).locator("g.threshold").count() == 1
    page.close()


def test_every_page_opens_with_its_content(demo, shots, browser) -> None:  # noqa: F811
    ws, base = demo
    pages = shots.demo_pages(base, ws)
    names = {n for n, _ in pages}
    links: set[str] = set()
    assert {"models", f"model-{LIVE}", "features", "feature-user_live", "lineage-request"} <= names
    for name, path in pages:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        resp = page.goto(base + path)
        assert resp is not None and resp.status == 200, name
        for charts in page.locator(".charts[data-charts], #charts").all():
            charts.evaluate(
                "e => new Promise(r => { const t = setInterval(() => { if (e.dataset.ready) "
                "{ clearInterval(t); r(); } }, 50); setTimeout(r, 15000); })"
            )
        assert page.locator("h1").first.inner_text().strip(), name
        assert page.locator("main, body").first.inner_text().count("Traceback") == 0, name
        assert errors == [], (name, errors)
        links |= {a.get_attribute("href") for a in page.locator("main a[href^='/']").all()}
        page.close()
    checked = sorted(h for h in links if "/download" not in h)
    for href in checked[:150]:  # the in-site links of every page resolve (bounded)
        assert httpx.get(base + href, timeout=60).status_code == 200, href
