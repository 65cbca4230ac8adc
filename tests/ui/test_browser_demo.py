"""On a workspace produced by the demo (examples/demo.py, as `make demo` runs it), in Chromium: the lineage
picture shows the right nodes and its links open, and axe-core finds no accessibility issue (of any impact)
on any page.

The demo takes minutes: the workspace (conftest.py's session-scoped `demo` fixture) is built once per session, or
reused from ROOST_TEST_DEMO_WS (a folder a previous `ROOST_DEMO_DIR=... python examples/demo.py` wrote).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from tests.ui.test_browser import browser  # noqa: F401 - the shared Chromium fixture

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _store_facts(ws: Path, request_id: str) -> dict:
    """What the registry and the request log say, read in a subprocess on the demo workspace (independent of the UI)."""
    import json
    import subprocess

    code = (
        "import json, sys, roost\n"
        "from roost.registry.backend import default_store\n"
        "st = default_store()\n"
        "prod = st.lookup_version('engagement@prod')\n"
        "live = st.lookup_version('engagement-live/1')\n"
        "run = roost.get_run(live.run_id)\n"
        "print(json.dumps({'prod_run': prod.run_id, 'live_run': live.run_id,"
        " 'fp': run['params'].get('data.fingerprint'), 'refs': (live.meta or {}).get('feature_refs')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ws, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_lineage_picture_of_a_served_request(demo, shots, browser):  # noqa: F811
    ws, base = demo
    rid = shots.newest_request_id(ws)
    assert rid, "the demo logs the requests it serves"
    facts = _store_facts(ws, rid)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(base + "/lineage?target=" + rid)
    nodes = page.locator("#lineage-graph svg a.node")
    kinds = [nodes.nth(i).get_attribute("data-kind") for i in range(nodes.count())]
    assert kinds[:4] == ["request", "model_version", "run", "data"]
    view_nodes = page.locator("#lineage-graph a.node[data-kind='view']")
    views = sorted(view_nodes.nth(i).get_attribute("data-name") for i in range(view_nodes.count()))
    want_views = sorted({f"view {str(r).split(':')[0]}" for r in (facts["refs"] or [])})
    assert views == want_views and len(views) >= 1
    hrefs = {k: nodes.nth(i).get_attribute("href") for i, k in enumerate(kinds) if k != "view"}
    assert hrefs["run"] == f"/runs/{facts['live_run']}"
    assert hrefs["model_version"].startswith("/models/engagement-live")
    for i in range(nodes.count()):  # every node opens a page
        href = nodes.nth(i).get_attribute("href")
        assert httpx.get(base + href, timeout=60).status_code == 200, href
    data = httpx.get(base + hrefs["data"], timeout=60).text  # the runs trained on the same data fingerprint
    assert facts["live_run"] in data
    page.click("#lineage-graph a.node[data-kind='run']")
    page.wait_for_url(f"**/runs/{facts['live_run']}")

    # a model version alone: the chain starts at the version (no request node)
    page.goto(base + "/lineage?target=engagement@prod")
    first = page.locator("#lineage-graph svg a.node").first
    assert first.get_attribute("data-kind") == "model_version"
    assert page.locator(f"#lineage-graph a.node[href='/runs/{facts['prod_run']}']").count() == 1
    assert httpx.get(base + "/lineage?target=no-such-thing", timeout=60).status_code == 404
    page.close()


def test_no_critical_accessibility_issue_on_any_page(demo, shots, browser):  # noqa: F811
    axe_mod = pytest.importorskip("axe_playwright_python.sync_playwright", reason="axe-playwright-python (dev dep)")
    ws, base = demo
    axe = axe_mod.Axe()
    found: dict[str, list[str]] = {}
    pages = shots.demo_pages(base, ws)
    assert len(pages) >= 10
    for name, path in pages:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + path)
        for charts in page.locator(".charts[data-charts], #charts").all():  # the drawn charts are checked too
            charts.evaluate(
                "e => new Promise(r => { const t = setInterval(() => { if (e.dataset.ready) "
                "{ clearInterval(t); r(); } }, 50); setTimeout(r, 15000); })"
            )
        res = axe.run(page)
        bad = res.response["violations"]  # any impact: the pages are clean, minor issues included
        if bad:
            found[name] = [f"{v['impact']} {v['id']}: {v['nodes'][0]['target']}" for v in bad]
        page.close()
    assert not found, found
