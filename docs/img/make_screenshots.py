"""Screenshots of the runs list, a run page and a compare page at 1400 and 800 px, on real training runs.

    .venv/bin/python docs/img/make_screenshots.py [--rows 4000] [--keep DIR]

Trains into a fresh temporary workspace (two models, an `auto` run with its candidates, a 3-trial tuning
run), starts `roost ui` on a free loopback port and drives Debian's Chromium through Playwright (the launch
flags of tests/ui/test_browser.py). Writes docs/img/ui-{runs,runs-expanded,run,compare}-{1400,800}.png.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
WIDTHS = (1400, 800)


def populate(ws_dir: Path, rows: int) -> dict[str, str]:
    """A workspace with trained runs: lgbm, mlp, auto (candidates nested) and a tuning run (trials nested)."""
    import roost  # noqa: F401 - the public API loads lazily
    from roost import workspace
    from roost.datasets.engagement import make_engagement
    from roost.train.api import train
    from roost.tune.task import tune_task

    ws = workspace.init(ws_dir)
    os.chdir(ws_dir)
    workspace.use(ws)
    make_engagement(rows, ws_dir / "data", seed=0)
    base = {"data": "data/train.parquet", "label": "clicked", "experiment": "engagement"}
    base["split"] = {"method": "time", "column": "event_time"}
    out = {}
    out["lightgbm"] = train({**base, "model": {"type": "lightgbm"}}, progress=False).run_id
    out["mlp"] = train({**base, "model": {"type": "mlp", "params": {"epochs": 6}}}, progress=False).run_id
    out["auto"] = train({**base, "model": {"type": "auto"}}, progress=False).run_id
    tune_task({**base, "model": {"type": "lightgbm"}}, trials=3, seed=0)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shoot(ws_dir: Path, runs: dict[str, str]) -> list[Path]:
    """Start the UI on the workspace and take the screenshots; returns the files written."""
    import httpx
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "ui", "--port", str(port)],
        cwd=ws_dir,
        env=env,
        start_new_session=True,
    )
    base, written = f"http://127.0.0.1:{port}", []
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
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for w in WIDTHS:
                page = b.new_page(viewport={"width": w, "height": 900})
                page.goto(base + "/runs")
                written.append(OUT / f"ui-runs-{w}.png")
                page.screenshot(path=str(written[-1]), full_page=True)
                for btn in page.locator("button.expand").all():
                    btn.click()
                page.click("#col-picker summary")
                written.append(OUT / f"ui-runs-expanded-{w}.png")
                page.screenshot(path=str(written[-1]), full_page=True)
                page.goto(base + f"/runs/{runs['mlp']}")
                page.wait_for_selector("#charts[data-ready='1']")
                written.append(OUT / f"ui-run-{w}.png")
                page.screenshot(path=str(written[-1]), full_page=True)
                page.goto(base + f"/compare?runs={runs['mlp']},{runs['lightgbm']},{runs['auto']}")
                page.wait_for_selector("#charts[data-ready='1']")
                written.append(OUT / f"ui-compare-{w}.png")
                page.screenshot(path=str(written[-1]), full_page=True)
                page.close()
            b.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return written


def main() -> int:
    """Populate a workspace, take the screenshots, print where they are."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--keep", type=Path, default=None, help="workspace folder to keep (default: a temp dir)")
    a = ap.parse_args()
    for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        os.environ.pop(var, None)
    with tempfile.TemporaryDirectory() as tmp:
        ws_dir = a.keep or Path(tmp) / "ws"
        runs = populate(ws_dir, a.rows)
        for f in shoot(ws_dir, runs):
            print(f.relative_to(OUT.parents[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
