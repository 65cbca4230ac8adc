"""Screenshots of every UI page on a workspace produced by the demo (`make demo`), for docs/ui.md.

    .venv/bin/python docs/img/make_screenshots.py [--workspace DIR] [--rows 4000]

Without --workspace it runs examples/demo.py into a temporary folder (ROOST_DEMO_ROWS rows; ~6 min on 2 loaded
cores), then starts `roost ui` there on a free loopback port and drives Debian's Chromium through Playwright
(the launch flags of tests/ui/test_browser.py). Writes docs/img/ui-<page>.png (1280 px wide viewport shots,
palette-reduced so each stays under 200 KB). `demo_pages` is also the page list of the accessibility test.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

OUT = Path(__file__).resolve().parent
ROOT = OUT.parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WIDTH, HEIGHT = 1280, 900
MAX_BYTES = 200_000
SHOT_VIEW = "user_live"  # the feature view the demo leaves stale online (its page shows the planted skew)
# page -> (second shot, the section it scrolls to): what is served and its traffic, the view's skew
SCROLLED = {
    "model-engagement": ("served", "#served"),
    f"feature-{SHOT_VIEW}": (f"feature-{SHOT_VIEW}-skew", "#fv-skew"),
}
# resolve once the element's charts are drawn (data-ready set by chart.js), or after 15 s
WAIT_READY = (
    "e => new Promise(r => { const t = setInterval(() => { if (e.dataset.ready) { clearInterval(t); r(); } }, 50);"
    " setTimeout(r, 15000); })"
)


def build_demo(ws_dir: Path, rows: int) -> None:
    """Run `make demo`'s script into ws_dir (a subprocess, as `make demo` runs it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update(ROOST_DEMO_DIR=str(ws_dir), ROOST_DEMO_ROWS=str(rows))
    subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py")], env=env, check=True, cwd=ROOT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def ui_server(ws_dir: Path) -> Iterator[str]:
    """`roost ui` on a free loopback port in ws_dir; yields its base URL, kills its process group after."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(port)],
        cwd=ws_dir,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/runs", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def newest_request_id(ws_dir: Path) -> str | None:
    """A request id from the workspace's request logs (the demo serves engagement-live by entity id)."""
    import pyarrow.parquet as pq

    files = sorted((ws_dir / ".roost" / "request_logs").glob("*/*/*.parquet"))
    files = [f for f in files if "shadow" not in f.parts]
    if not files:
        return None
    ids = pq.read_table(files[-1], columns=["_request_id"])["_request_id"].to_pylist()
    return str(ids[0]) if ids else None


def demo_pages(base: str, ws_dir: Path) -> list[tuple[str, str]]:
    """(name, path) of every UI page worth a look on a demo workspace, ids read through the UI's JSON API."""
    import httpx

    def get(path: str) -> Any:
        r = httpx.get(base + path, timeout=60)
        r.raise_for_status()
        return r.json()

    runs = get("/api/runs?" + urlencode({"per_page": 200}))["runs"]
    auto = next(r for r in runs if r["tags"].get("roost.model_type") == "auto" and not r.get("parent_run_id"))
    kids = [r["run_id"] for r in runs if r.get("parent_run_id") == auto["run_id"]]
    gbm = next(r for r in runs if r["tags"].get("roost.model_type") == "lightgbm" and not r.get("parent_run_id"))
    models = [m["name"] for m in get("/api/models")]
    pages = [
        ("experiments", "/experiments"),
        ("runs", "/runs?" + urlencode({"experiment": auto["experiment"]})),
        ("run-auto", f"/runs/{auto['run_id']}"),
        ("compare", "/compare?" + urlencode({"runs": ",".join(kids)})),
        ("run-lightgbm", f"/runs/{gbm['run_id']}"),
        ("artifact", f"/runs/{gbm['run_id']}/artifacts/view?" + urlencode({"path": "config.yaml"})),
        ("models", "/models"),
        *((f"model-{m}", f"/models/{m}") for m in models),
        *((f"monitoring-{m}", f"/models/{m}/monitoring") for m in models if m == "engagement-live"),
        ("features", "/features"),
        *((f"feature-{v}", f"/features/{v}") for v in sorted(get("/api/feature-views"))),
        ("shadow", "/shadow"),
        ("lineage", "/lineage"),
    ]
    rid = newest_request_id(ws_dir)
    if rid:
        pages.append(("lineage-request", "/lineage?" + urlencode({"target": rid})))
    return pages


def _small_png(png: bytes) -> bytes:
    """The PNG with its colours reduced to a 256-colour palette (a text UI looks the same; a third the bytes)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _save(page: Any, name: str) -> Path:
    """The page's viewport as docs/img/ui-<name>.png (palette-reduced, at most MAX_BYTES)."""
    png = _small_png(page.screenshot(full_page=False))
    if len(png) > MAX_BYTES:
        raise SystemExit(f"{name}: {len(png):,} bytes, over {MAX_BYTES:,}")
    out = OUT / f"ui-{name}.png"
    out.write_bytes(png)
    return out


def shoot(ws_dir: Path) -> list[Path]:
    """Start the UI on the workspace and write one screenshot per page; returns the files written."""
    from playwright.sync_api import sync_playwright

    written = []
    with ui_server(ws_dir) as base, sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for name, path in demo_pages(base, ws_dir):
            if name.startswith("feature-") and name != f"feature-{SHOT_VIEW}":
                continue  # one feature view page is enough for the docs
            page = b.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(base + path)
            for charts in page.locator(".charts[data-charts], #charts").all():
                charts.evaluate(WAIT_READY)
            if name == "runs":
                for btn in page.locator("button.expand").all()[:1]:
                    btn.click()
            if name == "compare":  # the charts: two step kinds on separate axes, final values as bars
                split = page.locator("figure.chart[data-kind='boosting_round']")
                (split.first if split.count() else page.locator("#charts")).evaluate("e => e.scrollIntoView()")
            written.append(_save(page, name))
            if name in SCROLLED:  # a second shot of the same page, scrolled to a section further down
                extra, selector = SCROLLED[name]
                page.locator(selector).evaluate("e => e.scrollIntoView()")
                written.append(_save(page, extra))
            page.close()
        b.close()
    return written


def main() -> int:
    """Build (or reuse) a demo workspace, take the screenshots, print where they are."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=None, help="an existing demo workspace (default: run the demo)")
    ap.add_argument("--rows", type=int, default=4000, help="demo rows when the demo runs here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir = a.workspace or Path(tmp) / "demo-workspace"
        if a.workspace is None:
            build_demo(ws_dir, a.rows)
        for f in shoot(ws_dir.resolve()):
            print(f"{f.relative_to(ROOT)}  {f.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
