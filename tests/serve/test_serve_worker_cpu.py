"""How a worker spends its CPU: glibc keeps the freed heap instead of faulting it back in for every request."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest
from servekit import Server, v2_body


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
