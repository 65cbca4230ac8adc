"""Many models per fleet (#35 item 3): 200 small registry models behind one 2-worker `roost serve --all`.

Creates a fresh workspace, registers N shifted copies of one 30-input logreg package (each with alias prod), then
for each budget (none, and one that fits about half the models): starts the fleet and measures
  * worker RSS (sum of both workers' VmRSS) at start, after every model was loaded, and the resident-model bytes
    the workers account (roost_models_resident_bytes: each load's RSS growth, at least 256 kB + the ONNX file);
  * cold latency: the first request of each model (one pass over all N, c=1; every request loads its model);
  * warm latency: passes over all N at c=1 and c=4 once the workers hold them (loads counted during the pass:
    0 means every request was warm; with a budget below the working set every pass reloads evicted models).
Latency is the client's (httpx, keep-alive), 1 row, so it includes ~0.3-0.6 ms of client-side Python.

    PYTHONPATH=src .venv/bin/python bench/many_models.py [--models 200] [--budget 80MB]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

import roost

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))
from _common import REPO, machine
from manykit import register_many
from servekit import breast_cancer, free_port, logreg_package, v2_body


def worker_rss_mb(pid: int) -> float:
    """Sum of the VmRSS of `pid`'s children (the fleet's workers), MB."""
    total = 0
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def metric(client: httpx.Client, name: str) -> float:
    """Sum of a metric's samples over labels and workers."""
    from prometheus_client.parser import text_string_to_metric_families

    fams = text_string_to_metric_families(client.get("/metrics").text)
    return sum(s.value for f in fams for s in f.samples if s.name == name)


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile of xs, ms."""
    return float(np.percentile(np.asarray(xs) * 1000, q))


def timed_pass(url: str, names: list[str], body: dict, conc: int) -> tuple[list[float], int]:
    """Latencies (s) of one request per name at concurrency `conc`, and the count of non-200 answers."""
    chunks = [names[i::conc] for i in range(conc)]

    def run(chunk: list[str]) -> tuple[list[float], int]:
        out, bad = [], 0
        with httpx.Client(base_url=url, timeout=60) as c:
            for n in chunk:
                t = time.perf_counter()
                r = c.post(f"/v2/models/{n}/infer", json=body)
                out.append(time.perf_counter() - t)
                bad += r.status_code != 200
        return out, bad

    with ThreadPoolExecutor(conc) as pool:
        results = list(pool.map(run, chunks))
    return [x for r in results for x in r[0]], sum(r[1] for r in results)


def fleet(ws: Path, names: list[str], body: dict, budget: str | None) -> dict[str, object]:
    """Start `roost serve --all` (2 workers), measure, stop."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}, "ROOST_WORKSPACE": str(ws)}
    env["PYTHONPATH"] = str(REPO / "src")
    args = ["--all", "--replicas", "2", "--port", str(port), *(["--max-memory", budget] if budget else [])]
    log = open(ws / f"serve-{budget}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.serve", *args],
        cwd=ws,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while b" on http://" not in (ws / f"serve-{budget}.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, (ws / f"serve-{budget}.log").read_text()
            time.sleep(0.2)
        time.sleep(1.0)
        out: dict[str, object] = {"budget": budget or "none", "rss_start_mb": worker_rss_mb(proc.pid)}
        with httpx.Client(base_url=url, timeout=60) as c:
            cold, bad = timed_pass(url, names, body, 1)
            out.update(cold_p50=pct(cold, 50), cold_p99=pct(cold, 99), cold_max=pct(cold, 100), failed=bad)
            for _ in range(12):  # until both workers hold every model (or the budget stops them)
                timed_pass(url, names, body, 2)
                if metric(c, "roost_model_loads_total") >= 2 * len(names):
                    break
            out["rss_loaded_mb"] = worker_rss_mb(proc.pid)
            out["resident"] = metric(c, "roost_models_resident")
            out["resident_mb"] = metric(c, "roost_models_resident_bytes") / 1e6
            for conc in (1, 4):
                loads = metric(c, "roost_model_loads_total")
                lat: list[float] = []
                for _ in range(3):
                    xs, b = timed_pass(url, names, body, conc)
                    lat += xs
                    out["failed"] = int(out["failed"]) + b  # type: ignore[call-overload]
                out[f"warm_c{conc}_p50"] = pct(lat, 50)
                out[f"warm_c{conc}_p99"] = pct(lat, 99)
                out[f"warm_c{conc}_loads"] = metric(c, "roost_model_loads_total") - loads
            out["rss_end_mb"] = worker_rss_mb(proc.pid)
            out["evictions"] = metric(c, "roost_model_evictions_total")
            out["load_mean_ms"] = (
                1000 * metric(c, "roost_model_load_seconds_total") / metric(c, "roost_model_loads_total")
            )
        return out
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(60)
        log.close()


def main() -> None:
    """Register the models, run the fleet without and with a budget, print a table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--budget", default="80MB", help="the budgeted run's --max-memory (fits about half)")
    a = ap.parse_args()
    print(machine(), f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="roost-many-") as tmp:
        from roost import workspace

        ws = Path(tmp) / "ws"
        roost.init(ws)
        workspace.use(ws)
        base = logreg_package(Path(tmp) / "base")
        names = [f"model_{i:03d}" for i in range(a.models)]
        t = time.perf_counter()
        register_many(base, Path(tmp) / "pkgs", names)
        print(f"registered {a.models} models in {time.perf_counter() - t:.1f} s", flush=True)
        from roost.registry.api import models_marker
        from roost.serve.catalog import Selection, Snapshot

        for label, fn in (("change marker", models_marker), ("list_models", lambda: Snapshot.read(Selection()))):
            times = []
            for _ in range(21):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            print(f"registry watch: {label} {1000 * float(np.median(times)):.2f} ms (median of 21)", flush=True)
        X, _, cols = breast_cancer()
        body = v2_body(cols, X[:1])
        for budget in (None, a.budget):
            r = fleet(ws, names, body, budget)
            r["load_avg"] = os.getloadavg()[0]
            print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
