"""CPU per request of roost's serving app in process (no sockets): a loaded machine's req/s says little, CPU time per
request says what roost's own code costs. Compares two source trees by alternating child processes.

    python bench/serve_inproc.py --old /tmp/base_src --new src [--rows 1 64] [--rounds 6] [--n 400]

Each child (one tree on PYTHONPATH) builds the bench's 30-input breast-cancer logreg package (bench/serving.py's
train) once per run, serves it with build_app (metrics on, as a worker has them), and times `--n` sequential V2
JSON requests through the ASGI callable with time.process_time(); the parent alternates old and new `--rounds`
times and prints min / median µs per request of each side. INPROC_MULTIPROC=1 puts the metrics in mmap files as a
fleet's worker has them; INPROC_PROFILE=1 prints a cProfile of the child instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(pkg: str, rows: int, n: int, outputs: str) -> None:
    """(in the child) Print CPU µs per request of n sequential requests."""
    if os.environ.get("INPROC_MULTIPROC"):  # as a fleet's worker: metrics in mmap files
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="roost-inproc-prom-")
    if os.environ.get("INPROC_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _child(pkg, rows, n, outputs)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    _child(pkg, rows, n, outputs)


def _child(pkg: str, rows: int, n: int, outputs: str) -> None:
    """(in the child) the timed loop."""
    import numpy as np

    from roost.serve.config import ServeConfig
    from roost.serve.metrics import Metrics
    from roost.serve.worker import build_app

    app = build_app(ServeConfig(models=[pkg]), Metrics())
    sig = json.loads((Path(pkg) / "signature.json").read_text())
    cols = [i["name"] for i in sig["inputs"]]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, len(cols))).astype(np.float32) * 10 + 20
    req: dict = {
        "inputs": [
            {"name": c, "datatype": "FP32", "shape": [rows], "data": X[:, i].tolist()} for i, c in enumerate(cols)
        ]
    }
    if outputs:
        req["outputs"] = [{"name": o} for o in outputs.split(",")]
    body = json.dumps(req).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v2/models/bc/infer",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "query_string": b"",
    }
    msg = {"type": "http.request", "body": body, "more_body": False}
    got: list = []

    async def receive() -> dict:
        return msg

    async def send(m: dict) -> None:
        if m["type"] == "http.response.start":
            got.append(m["status"])

    async def go() -> float:
        batch = getattr(app.metrics, "batch_on_this_thread", None)
        if batch is not None:  # as a fleet worker's lifespan startup does (metrics written every 100 ms)
            batch()
        for _ in range(50):
            await app(scope, receive, send)
        t = time.process_time()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.process_time() - t) / n * 1e6

    us = asyncio.run(go())
    assert set(got) == {200}, set(got)
    print(f"{us:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--outputs", default="", help="comma-separated outputs to ask for (default: none named)")
    ap.add_argument("--child", nargs=2, help="(internal) PACKAGE ROWS: time one side")
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.n, a.outputs)
        return
    sys.path.insert(0, str(HERE))
    from serving import train

    work = Path(tempfile.mkdtemp(prefix="roost-inproc-"))
    train(work, [])
    pkg = str(work / "roost" / "bc")
    for rows in a.rows:
        res: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(a.rounds):
            for side in ("old", "new"):
                env = {**os.environ, "PYTHONPATH": str(Path(getattr(a, side)).resolve())}
                cmd = [sys.executable, __file__, "--old", a.old, "--new", a.new, "--n", str(a.n)]
                cmd += ["--outputs", a.outputs, "--child", pkg, str(rows)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                res[side].append(float(out.split()[-1]))
        load = os.getloadavg()[0]
        for side, v in res.items():
            print(
                f"rows={rows} {side}: min {min(v):.0f} median {statistics.median(v):.0f} µs/request "
                f"(n={a.n} x {a.rounds}, load {load:.1f})"
            )


if __name__ == "__main__":
    main()
