"""The pushing thread's CPU per small `Pusher.push(to="online")` to Redis: the client side of `streaming.py`'s push.

`time.thread_time` counts this thread's CPU only, so the wait for redis-server (and, mostly, the machine's load)
is left out. Three lines: checks only (the store's write stubbed), checks + encode (the call to redis-server
stubbed), the whole push. Compare two trees by running this with each one's `src` on PYTHONPATH, alternately:

    PYTHONPATH=$PWD/src .venv/bin/python bench/_push_client_cpu.py --pushes 1000
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streaming import _frames, _roost_workspace


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def main() -> None:
    """Print µs of client CPU per push for each stage, one figure per repetition."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pushes", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    from roost.features import Pusher

    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    port = _port()
    srv = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    work = Path(tempfile.mkdtemp(prefix="push-cpu-"))
    try:
        time.sleep(0.3)
        frames = _frames(a.pushes + 1, a.batch, a.entities)
        _roost_workspace(work, frames)
        p = Pusher("clicks", online_store=f"redis://127.0.0.1:{port}/0")
        p.push(frames[0], to="online")
        store = p.store

        def run(label: str) -> None:
            got = []
            for _ in range(a.reps):
                c = time.thread_time()
                for f in frames[1:]:
                    p.push(f, to="online")
                got.append((time.thread_time() - c) / a.pushes * 1e6)
            print(f"{label:<24} client CPU µs/push: " + ", ".join(f"{x:.0f}" for x in got))

        store.write = lambda views: {}  # stubs on the instance; `del` brings the class's methods back
        run("checks only")
        del store.write  # the class method again
        # the call to redis-server: `_evalsha` (packed by hiredis) where the store has it, else redis-py's command
        target = store if hasattr(type(store), "_evalsha") else store.r
        name = "_evalsha" if target is store else "execute_command"
        setattr(target, name, lambda *args, **kw: a.batch)
        run("checks + encode")
        delattr(target, name)
        run("whole push")
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
