"""How a worker spends its CPU: full batches overlap with decoding when a core is spare; glibc keeps freed heap."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest
from servekit import InProcess, Server, v2_body

from roost.serve.config import ServeConfig, usable_cores
from roost.serve.worker import create_app


def _threads_that_ran(app, ip: InProcess, cols: list[str], X: np.ndarray, rows: int) -> tuple[set[str], list]:
    """Names of the threads that ran the model for one request of `rows` rows, and its answer."""
    model = app.repo.get("bc")
    ran: set[str] = set()
    real = model.batcher._run

    def spy(inputs):
        ran.add(threading.current_thread().name)
        return real(inputs)

    model.batcher._run = spy
    try:
        status, _, out = ip.request("POST", "/v2/models/bc/infer", orjson.dumps(v2_body(cols, X[:rows])))
    finally:
        model.batcher._run = real
    assert status == 200, out
    return ran, orjson.loads(out)["outputs"]


def test_a_full_batch_runs_on_the_model_thread_only_when_others_are_in_flight_and_a_core_is_spare(pkgs, bc_data):
    """With overlap on and other connections open, a 64-row request (a full batch) runs on the model thread and
    answers exactly as inline; alone, or with overlap off (no spare core), it runs inline on the loop's thread."""
    X, _, cols = bc_data
    app = create_app([str(pkgs["bc"])])
    ip = InProcess(app)
    try:
        loop_thread = threading.current_thread().name
        app.open_connections = lambda: 5  # four other clients connected: not alone
        # a first run on the model thread can cost milliseconds (onnxruntime's per-thread set-up) and lift the
        # model's average run time past the inline limit for a while: warm that thread with a mergeable request
        ran, _ = _threads_that_ran(app, ip, cols, X, 63)
        assert ran == {"roost-batcher-bc"}
        app.repo.get("bc").run_s = 0.0
        app.overlap_full_batches = False
        ran, inline = _threads_that_ran(app, ip, cols, X, 64)
        assert ran == {loop_thread}
        app.overlap_full_batches = True
        ran, overlapped = _threads_that_ran(app, ip, cols, X, 64)
        assert ran == {"roost-batcher-bc"}, ran
        assert overlapped == inline
        app.open_connections = lambda: 1  # alone: inline whatever the setting
        ran, _ = _threads_that_ran(app, ip, cols, X, 64)
        assert ran == {loop_thread}
    finally:
        ip.close()


def test_spare_core_compares_replicas_with_the_cores_this_process_may_use():
    cores = usable_cores()
    assert cores == (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    assert ServeConfig(models=["m"], replicas=max(1, cores - 1)).spare_core() is (cores > max(1, cores - 1))
    assert ServeConfig(models=["m"], replicas=cores).spare_core() is False
    assert ServeConfig(models=["m"], replicas=cores + 3).spare_core() is False


def _minor_faults(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[7])


WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("ROOST_TEST_BODY"), "rb"); wrk.body = f:read("*all"); f:close()
"""


def _wrk(url: str, lua: Path, body: Path, seconds: int) -> int:
    """Requests wrk completed in `seconds` with 16 connections (the serving bench's load)."""
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(lua), url],
        env={**os.environ, "ROOST_TEST_BODY": str(body)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    assert "Non-2xx" not in out, out
    return int(re.search(r"(\d+) requests in", out).group(1))


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (make installs it: apt-get install wrk)")
@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc to count page faults")
def test_a_worker_does_not_fault_its_heap_back_in_for_every_request(pkgs, bc_data, tmp_path):
    """Under 16 connections of 64-row requests glibc's defaults trimmed the top of a worker's heap after the
    requests' buffers were freed and faulted it back in for the next ones: ~9 minor page faults a request (perf
    showed them in memcpy); the worker now keeps freed heap (mallopt): ~0.04."""
    X, _, cols = bc_data
    body, lua = tmp_path / "body.json", tmp_path / "post.lua"
    # float32 values sent as JSON doubles (17.989999771118164): ~40 kB a request, as the serving bench sends them
    body.write_bytes(orjson.dumps(v2_body(cols, X[:64].astype(np.float32))))
    lua.write_text(WRK_LUA)
    env = {k: "" for k in os.environ if k.startswith("MALLOC_")}
    srv = Server([str(pkgs["bc"])], "--replicas", "1", log=tmp_path / "serve.log", env=env)
    try:
        srv.wait_ready()
        (worker,) = srv.worker_pids()
        url = f"{srv.url}/v2/models/bc/infer"
        _wrk(url, lua, body, 1)  # warm: the first requests grow the heap and fill the caches
        before = _minor_faults(worker)
        requests = _wrk(url, lua, body, 3)
        per_request = (_minor_faults(worker) - before) / requests
    finally:
        srv.stop()
    assert per_request < 1, f"{per_request:.2f} minor page faults per request"
