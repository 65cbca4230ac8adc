"""A worker stopped while it is still loading its models exits cleanly (SystemExit 0, exit hooks run).

The supervisor SIGTERMs every worker when it drains; a worker that was still loading (a slow machine, a big
model) used to die by the signal's default action: exit status -15, no `atexit` hooks, nothing flushed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CODE = """
import atexit, sys, time
from pathlib import Path
import roost.serve.worker as worker
marks = Path(sys.argv[1])
atexit.register(lambda: (marks / "atexit").write_text("ran"))
def slow_build_app(*args, **kwargs):
    (marks / "loading").write_text("yes")
    for _ in range(600):  # a model that takes a minute to load, in small steps as real loading runs bytecode
        time.sleep(0.1)
    raise AssertionError("the SIGTERM should have ended the load")
worker.build_app = slow_build_app
worker.main()
"""


def test_sigterm_during_model_load_is_a_clean_exit(tmp_path: Path) -> None:
    from roost.serve.config import CONFIG_ENV, ServeConfig
    from roost.serve.worker import FD_ENV

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    env[CONFIG_ENV] = ServeConfig(models=["unused"]).to_json()
    env[FD_ENV] = str(sock.fileno())
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, str(tmp_path)],
        env=env,
        pass_fds=[sock.fileno()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "loading").exists():
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the worker never began loading"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0, (proc.returncode, out.decode())
    assert (tmp_path / "atexit").read_text() == "ran"
