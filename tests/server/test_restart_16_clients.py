"""The issue's reliability claim: 16 client processes log through a 3-worker `roost server` that is stopped and
started again on the same port and store while they log; afterwards the SQL store holds every (run, key, step)
exactly once — the reference is what each client was told to log, not anything the client reports.

sigterm: the graceful stop of the issue; clients keep retrying (60 s window) and block until it is back.
sigkill: batches are cut mid-request (some committed, unanswered: only the idempotency key keeps them single), and
a 2 s retry window makes the flusher give up during the outage, so batches wait in the buffer with their keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SRC, ServerProc

CLIENTS, POINTS = 16, 2000  # points per key per client; two keys ('a', 'b')

CLIENT = """
import logging, os, sys, time
import roost

logging.basicConfig(level=logging.WARNING)
logging.getLogger("roost.registry.rest").setLevel(logging.INFO)  # 'retrying' lines: the outage was met
i, n, marker, back = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
with roost.start_run("restart16", name=f"client-{i}", params={"client": i}) as run:
    open(marker + ".id", "w").write(run.id)
    for step in range(n):
        roost.log_metrics({"a": step * 0.5, "b": float(i * 100_000 + step)}, step=step)
        if step == n // 4:
            open(marker, "w").close()  # a quarter logged: the test may restart the server now
        time.sleep(0.003)
    while back and not os.path.exists(back):  # end the run once the server is back (its end has no buffer left)
        time.sleep(0.05)
"""


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_16_clients_through_a_restart_lose_and_duplicate_nothing(ws: Any, tmp_path: Path, stop: str) -> None:
    from roost.registry.sqlstore import sql_store

    t0 = time.monotonic()
    srv = ServerProc(tmp_path / "server", workers=3)
    srv.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env.update(PYTHONPATH=SRC, ROOST_SERVER=srv.url, ROOST_TOKEN=srv.token,
               ROOST_SERVER_RETRY_S="60" if stop == "sigterm" else "2",
               XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))  # fmt: skip
    marks = [tmp_path / f"client-{i}" for i in range(CLIENTS)]
    back = tmp_path / "server-back" if stop == "sigkill" else ""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(i), str(POINTS), str(marks[i]), str(back)],
            cwd=ws.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(CLIENTS)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(m.exists() for m in marks):
            assert time.monotonic() < deadline, "the clients did not start logging within 60 s"
            assert all(p.poll() in (None, 0) for p in procs), [p.communicate()[1][-2000:] for p in procs if p.poll()]
            time.sleep(0.05)
        if stop == "sigterm":
            srv.stop()  # uvicorn drains what it is answering, the rest meets a closed port
        else:
            srv.kill()  # requests cut wherever they are
        still_logging = sum(p.poll() is None for p in procs)
        time.sleep(1.0 if stop == "sigterm" else 3.0)  # sigkill: past the clients' 2 s retry window
        srv.start()
        if back:
            back.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        srv.stop()
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert still_logging == CLIENTS  # the restart came mid-run for every client
    assert sum("retrying" in err for _out, err in outs) >= CLIENTS // 2  # and most of them met the outage
    if stop == "sigkill":  # flushes gave up during the outage and kept their batches for the next tick
        assert sum("failed, will retry" in err for _out, err in outs) >= CLIENTS // 2

    store = sql_store(srv.store_url)
    for i, mark in enumerate(marks):
        run_id = Path(str(mark) + ".id").read_text()
        run = store.get_run(run_id)
        assert (run["status"], run["params"], run["user"]) == ("FINISHED", {"client": i}, "admin")
        for key, value in (("a", lambda s: s * 0.5), ("b", lambda s: float(i * 100_000 + s))):
            got = [(p["step"], p["value"]) for p in store.metric_history(run_id, key)]
            want = [(s, value(s)) for s in range(POINTS)]
            assert got == want, f"client {i} key {key}: {len(got)} points stored, {len(set(got))} distinct"
    print(f"16 clients x {2 * POINTS} points through a {stop} restart: {time.monotonic() - t0:.1f} s")
