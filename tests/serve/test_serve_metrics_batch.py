"""Batched metrics (#35 item 2): a fleet worker's event loop counts requests locally and writes the shared metric
files at most every flush interval (a request made 10 writes, ~18 µs of a ~78 µs 1-row request); what a scrape
reads after the flush equals what writing every update at once gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
from servekit import v2_body

SCRIPT = r"""
import asyncio, json, os, sys, threading
from prometheus_client import mmap_dict
from prometheus_client.parser import text_string_to_metric_families
from roost.serve.config import ServeConfig
from roost.serve.metrics import Metrics
from roost.serve.worker import build_app

writes = [0]
real = mmap_dict.MmapedDict.write_value
def counting(self, *a, **k):
    writes[0] += 1
    return real(self, *a, **k)
mmap_dict.MmapedDict.write_value = counting

batched = sys.argv[2] == "1"
bodies = json.loads(open(sys.argv[3]).read())
metrics = Metrics()
metrics.flush_s = 3600.0  # no timer flush during the requests: only the explicit flush below writes
app = build_app(ServeConfig(models=[sys.argv[1]]), metrics)

async def go():
    writes[0] = 0  # (loading the model wrote its version gauge)
    if batched:
        metrics.batch_on_this_thread()
    sent = []
    async def send(m):
        if m["type"] == "http.response.start":
            sent.append(m["status"])
    for b in bodies:
        body = b.encode()
        msg = {"type": "http.request", "body": body, "more_body": False}
        async def receive():
            return msg
        scope = {"type": "http", "method": "POST", "path": "/v2/models/bc/infer", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1)}
        await app(scope, receive, send)
    during = writes[0]
    # gRPC's pool threads and model threads write at once, batched or not
    t = threading.Thread(target=metrics.answered, args=("bc", "1"))
    t.start(); t.join()
    metrics.flush()
    text = metrics.exposition()[0].decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith(("roost_requests_total", "roost_model_version_requests", "roost_batch_",
                                  "roost_inflight", "roost_request_latency_seconds_count",
                                  "roost_request_latency_seconds_bucket")):
                key = s.name + json.dumps(sorted(s.labels.items()))
                if s.name == "roost_request_latency_seconds_bucket" and s.labels["le"] != "+Inf":
                    continue  # (each run's own latencies)
                out[key] = s.value
    print(json.dumps({"statuses": sent, "during": during, "samples": out}))

asyncio.run(go())
"""


def _run(pkg: Path, batched: bool, bodies: Path, tmp: Path) -> dict:
    prom = tmp / ("prom-b" if batched else "prom-u")
    prom.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(pkg), "1" if batched else "0", str(bodies)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_event_loop_writes_batched_metrics_that_equal_writing_each_update(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    sizes = [1, 1, 3, 64, 1, 2, 1, 1, 7, 1]
    bodies = [orjson.dumps(v2_body(cols, X[i : i + n])).decode() for i, n in enumerate(sizes)]
    bodies.append("{")  # a 400 counts too
    path = tmp_path / "bodies.json"
    path.write_text(json.dumps(bodies))
    each = _run(pkgs["bc"], False, path, tmp_path)
    batched = _run(pkgs["bc"], True, path, tmp_path)
    assert each["statuses"] == batched["statuses"] == [200] * len(sizes) + [400]
    assert each["during"] >= 8 * len(bodies)  # about 10 value writes a request
    assert batched["during"] == 0  # nothing written until the flush
    assert batched["samples"] == each["samples"]
    assert batched["samples"]['roost_requests_total[["code", "200"], ["model", "bc"], ["protocol", "v2"]]'] == 10
    assert batched["samples"]['roost_model_version_requests_total[["model", "bc"], ["version", "1"]]'] == 11
