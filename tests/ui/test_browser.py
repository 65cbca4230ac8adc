"""End to end in Debian's Chromium: runs table, filter, sort, run page chart, compare, live TensorBoard."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.browser
ENV_CLEAN = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def ui_server(populated):
    """`roost ui` as a subprocess on a free loopback port (its process group killed in teardown)."""
    port = _free_port()
    log = open(populated["ws"].state_dir / "ui-test.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(port)],
        cwd=populated["ws"].root,
        env=ENV_CLEAN,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120  # (only a hang guard: a loaded machine can be slow to start it)
    while True:
        assert time.monotonic() < deadline, (populated["ws"].state_dir / "ui-test.log").read_text()
        try:
            if httpx.get(base + "/runs", timeout=10).status_code == 200:
                break
        except httpx.HTTPError:
            assert proc.poll() is None, (populated["ws"].state_dir / "ui-test.log").read_text()
            time.sleep(0.2)
    yield {"base": base, "proc": proc, **populated}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    log.close()


@pytest.fixture
def browser():
    """Headless Debian Chromium through Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; never `playwright install`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_browse_filter_sort_run_compare_tensorboard(ui_server, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base, a, b = ui_server["base"], ui_server["a"], ui_server["b"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # runs table
    page.goto(base + "/runs")
    rows = page.locator("#runs-table tbody tr")
    assert rows.count() == 3
    assert page.locator("#run-count").inner_text() == "1–3 of 3 runs"
    page.screenshot(path=str(shots / "1-runs.png"), full_page=True)

    # filter with the CLI grammar in the search box
    page.fill("input[name=q]", "params.lr >= 0.05")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**/runs?*q=params.lr*")
    assert sorted(page.locator("td.name a").all_inner_texts()) == ["failed-one", "wide"]
    page.screenshot(path=str(shots / "2-filtered.png"), full_page=True)

    # sort by a metric column: first click DESC, second ASC
    page.fill("input[name=q]", "")
    page.press("input[name=q]", "Enter")
    page.click("th a[data-field='metrics.auc']")
    page.wait_for_url("**order=metrics.auc+DESC*")
    names = page.locator("td.name a").all_inner_texts()
    assert names == ["<script>alert(1)</script>", "wide", "failed-one"]  # shown as text, not run
    page.click("th a[data-field='metrics.auc']")
    page.wait_for_url("**order=metrics.auc+ASC*")
    assert page.locator("td.name a").all_inner_texts() == list(reversed(names))
    page.screenshot(path=str(shots / "3-sorted.png"), full_page=True)

    # open a run: params, escaped name, a chart with data
    page.click("td.name a:text-is('<script>alert(1)</script>')")
    page.wait_for_url(f"**/runs/{a}")
    assert page.locator("#run-title").inner_text().startswith("<script>alert(1)</script>")
    page.wait_for_selector("#charts[data-ready='1']")
    loss = page.locator("figure.chart[data-metric='loss'] svg path.series")
    assert loss.count() == 1 and int(loss.get_attribute("data-points")) == 12
    assert page.locator("figure.chart svg path.series").count() == 2  # auc and loss
    page.locator("figure.chart[data-metric='loss'] svg").hover()
    assert "step" in page.locator("figure.chart[data-metric='loss'] .readout").inner_text()
    page.screenshot(path=str(shots / "4-run.png"), full_page=True)

    # compare two runs from the table
    page.goto(base + "/runs?experiment=churn")
    page.check(f"input[name=runs][value='{a}']")
    page.check(f"input[name=runs][value='{b}']")
    assert page.locator("#compare-btn").inner_text() == "Compare 2 selected"
    page.click("#compare-btn")
    page.wait_for_url("**/compare?*")
    assert page.locator("#param-diff tr.differs th").all_inner_texts() == ["lr", "model"]
    page.wait_for_selector("#charts[data-ready='1']")
    overlaid = page.locator("figure.chart[data-metric='auc'] svg path.series")
    assert overlaid.count() == 2
    assert {overlaid.nth(i).get_attribute("data-run") for i in range(2)} == {a, b}
    page.screenshot(path=str(shots / "5-compare.png"), full_page=True)

    # Launch TensorBoard for both runs: a new tab with a live TensorBoard behind the UI's proxy
    page.set_default_timeout(150_000)
    with page.expect_popup(timeout=150_000) as pop:
        page.click("#launch-tb")
    tb = pop.value
    tb.wait_for_load_state("load", timeout=150_000)
    assert "/tb/" in tb.url
    assert "TensorBoard" in tb.title()
    # the page URL gains a '#timeseries'-like fragment once TensorBoard's frontend has started: use the base
    tb_base = tb.url.split("#", 1)[0].split("?", 1)[0]
    assert tb_base.endswith("/"), tb.url
    # TensorBoard answers before its background reloader has read both logdirs: wait (hang guard 120 s)
    deadline = time.monotonic() + 120
    while True:
        runs = json.loads(tb.request.get(tb_base + "data/runs").text())
        if len(runs) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert sorted(r.split("/")[0] for r in runs) == sorted([f"_script_alert_1___script_-{a[:8]}", f"wide-{b[:8]}"])
    tb.wait_for_selector("text=wide-", timeout=120_000)
    tb.screenshot(path=str(shots / "6-tensorboard.png"))
    listed = httpx.get(base + "/api/tensorboard").json()
    assert len(listed) == 1
    tb_pid = listed[0]["pid"]

    assert dialogs == []  # no injected script ever ran
    assert len(list(shots.glob("*.png"))) == 6

    # stopping the UI stops its TensorBoard
    ui_server["proc"].send_signal(signal.SIGTERM)
    ui_server["proc"].wait(60)
    deadline = time.monotonic() + 60  # (only a hang guard)
    while _alive(tb_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(tb_pid)
    if alive:
        os.killpg(tb_pid, signal.SIGKILL)
    assert not alive
