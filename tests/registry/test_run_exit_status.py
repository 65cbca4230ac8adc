"""How a process's end ends its runs (#30 item 9): one rule inside `with roost.start_run()` and for runs left open
at interpreter exit. sys.exit(3) ended a run FINISHED outside `with` but FAILED inside."""

import os
import subprocess
import sys
import time

import pytest

import roost

HANG_GUARD_S = 120

PRELUDE = r"""
import os, sys, roost
from roost import workspace
workspace.use(sys.argv[1])
"""

# what the script does once its run is open and has a point; {indent} is the block's indentation
ENDINGS = {
    "normal end": ("pass", 0, "FINISHED", None),
    "sys.exit()": ("sys.exit()", 0, "FINISHED", None),
    "sys.exit(0)": ("sys.exit(0)", 0, "FINISHED", None),
    "sys.exit(3)": ("sys.exit(3)", 3, "FAILED", "SystemExit: 3"),
    "sys.exit('msg')": ("sys.exit('stopped: bad-data-77')", 1, "FAILED", "bad-data-77"),
    "raise": ("raise ValueError('boom-78')", 1, "FAILED", "boom-78"),
    "caught sys.exit(2)": (
        "try:\n{indent}    sys.exit(2)\n{indent}except SystemExit:\n{indent}    pass",
        0,
        "FINISHED",
        None,
    ),
}


def _script(ending: str, with_block: bool) -> str:
    indent = "    " if with_block else ""
    body = ENDINGS[ending][0].format(indent=indent)
    if with_block:
        head = 'with roost.start_run(experiment="exit") as run:\n'
    else:
        head = 'run = roost.start_run(experiment="exit")\n'
    lines = ["print(run.id, flush=True)", 'run.log_metric("x", 1.0)', body]
    return PRELUDE + head + "".join(f"{indent}{ln}\n" for ln in lines)


@pytest.mark.parametrize("ws", ["sqlite"], indirect=True)
@pytest.mark.parametrize("with_block", [True, False], ids=["with", "open-at-exit"])
@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_run_ends_by_the_process_exit_code_inside_and_outside_with(ws, ending, with_block):
    _, code, status, needle = ENDINGS[ending]
    env = {**os.environ, "ROOST_STORE_URL": ws.store_url}
    p = subprocess.run(
        [sys.executable, "-c", _script(ending, with_block), str(ws.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_GUARD_S,
    )
    assert p.returncode == code, p.stderr
    r = roost.get_run(p.stdout.split()[0])
    assert (r["status"], r["metrics"]) == (status, {"x": 1.0}), p.stderr
    if needle is None:
        assert "roost.error" not in r["tags"]
    else:
        assert needle in r["tags"]["roost.error"]


@pytest.mark.parametrize("ws", ["sqlite"], indirect=True)
def test_os_exit_leaves_the_run_to_the_heartbeat_and_it_becomes_lost(ws, monkeypatch):
    script = PRELUDE + 'run = roost.start_run(experiment="exit")\nprint(run.id, flush=True)\nrun.log_metric("x", 1.0)\n'
    script += "run.flush()\nos._exit(3)\n"
    env = {**os.environ, "ROOST_STORE_URL": ws.store_url, "ROOST_HEARTBEAT_INTERVAL_S": "0.5"}
    p = subprocess.run([sys.executable, "-c", script, str(ws.root)], capture_output=True, text=True, env=env)
    assert p.returncode == 3, p.stderr
    run_id = p.stdout.strip()
    assert roost.get_run(run_id)["status"] == "RUNNING"  # nothing ran at exit: only the heartbeat can tell
    monkeypatch.setenv("ROOST_HEARTBEAT_TIMEOUT_S", "2")
    deadline = time.monotonic() + HANG_GUARD_S
    while roost.get_run(run_id)["status"] != "LOST" and time.monotonic() < deadline:
        time.sleep(0.3)
    r = roost.get_run(run_id)
    assert r["status"] == "LOST" and r["metrics"] == {"x": 1.0}
