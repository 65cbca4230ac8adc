"""Helpers shared by several test folders (imported by name: tests/conftest.py puts tests/ on sys.path).

Workspaces: `copy_workspace` makes a test's workspace from the session's template (the root conftest's `ws`).
The "mixed frame" is a small synthetic table with every column kind training handles (numeric with NaN, string
with missing values, integer ids) and three labels; `mixed_config` is the training config the tests build on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MIXED_FEATURES = ["x1", "x2", "color", "user_id"]
ROOST_VARS = ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE")


def copy_workspace(template: Path, root: Path) -> Any:
    """A copy of an initialised workspace at `root` (its store already migrated: only the files are read)."""
    import shutil

    from roost import workspace

    shutil.copytree(template, root)
    return workspace.create(root)


def mixed_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Numeric (with NaN), string (with missing), int id, user/item columns and three labels."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(5, 3, size=n)
    color = rng.choice(["red", "green", "blue", "violet"], n)
    user_id = rng.integers(0, 50, n)
    item_id = rng.integers(-20, 80, n)
    user_seg = rng.choice(["a", "b"], n)
    item_cat = rng.choice(["books", "games", "music"], n)
    logit = 1.5 * x1 - 0.3 * (x2 - 5) + (color == "red") * 1.0 + (user_id % 3 == 0) * 0.8 + (item_cat == "games")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "color": color,
            "user_id": user_id,
            "user_seg": user_seg,
            "item_id": item_id,
            "item_cat": item_cat,
        }
    )
    df.loc[df.index % 11 == 0, "x2"] = np.nan
    df.loc[df.index % 13 == 0, "color"] = None
    df["clicked"] = y
    df["kind"] = np.where(logit > 1, "high", np.where(logit > -0.5, "mid", "low"))
    df["score"] = logit * 10 + 100 + rng.normal(size=n)
    return df


def mixed_parquet(path: Path, n: int = 400, seed: int = 0) -> Path:
    """Write `mixed_frame(n, seed)` to the Parquet file `path`; returns the path."""
    mixed_frame(n, seed).to_parquet(path)
    return path


def mixed_config(data_file: str | Path, **overrides: Any) -> dict[str, Any]:
    """A small training config on a mixed-frame file: label `clicked`, four feature columns, a 2-epoch MLP.

    Keyword arguments replace top-level keys (model=..., trainer=..., register=...)."""
    cfg: dict[str, Any] = {
        "data": str(data_file),
        "label": "clicked",
        "features": list(MIXED_FEATURES),
        "model": {"type": "mlp", "params": {"hidden": [8]}},
        "trainer": {"epochs": 2},
    }
    cfg.update(overrides)
    return cfg


def statements_sent(engine: Any, fn: Callable[[], Any], keep: Callable[[str], bool] = lambda sql: True) -> list[Any]:
    """(SQL, parameters) of every statement `fn()` sends through the SQLAlchemy `engine` that `keep(sql)` accepts."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if keep(statement):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return seen


def is_select(sql: str) -> bool:
    """True for a SELECT (or WITH ... SELECT) statement."""
    return sql.lstrip().upper().startswith(("SELECT", "WITH"))


@contextlib.contextmanager
def ctrl_c_reaches_children() -> Iterator[None]:
    """Children started inside take SIGINT as Ctrl-C even when this test process ignores it.

    A test run started as a background job of a script (`make test &`, `nohup`, `cmd & wait`) ignores SIGINT, and
    a child inherits an ignored signal through exec: its Python never installs the KeyboardInterrupt handler, so
    the SIGINT a test sends is lost and the child runs on. A handler (not an ignore) is reset to the default by
    exec, which Python replaces with its own. Call from the main thread (pytest and xdist run tests there).
    """
    old = signal.getsignal(signal.SIGINT)
    if old != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


STACKS_SIGNAL = signal.SIGUSR1
_DUMPING_MAIN = (
    "import faulthandler, runpy, signal; faulthandler.register(signal.{sig}, all_threads=True); "
    "runpy.run_module({mod!r}, run_name='__main__', alter_sys=True)"
)


def python_m_with_stacks(module: str) -> list[str]:
    """argv of `python -m module` whose process prints every thread's Python stack to stderr on STACKS_SIGNAL.

    faulthandler writes from its C signal handler, so the stacks come even when the main thread is blocked in C
    (a Ray call, a lock, a join); this test process's own signal handling is untouched."""
    return [sys.executable, "-c", _DUMPING_MAIN.format(sig=STACKS_SIGNAL.name, mod=module)]


def child_pythonpath(*dirs: Path) -> str:
    """PYTHONPATH for a child process: `dirs` first, then the folder this process imports roost from (the code
    under test, which is not always the installed one)."""
    import roost

    return os.pathsep.join(dict.fromkeys([*map(str, dirs), str(Path(roost.__file__).resolve().parents[1])]))


def stacks_now(p: subprocess.Popen[str], settle_s: float = 0.5) -> None:
    """Ask a process started with `python_m_with_stacks` to print its threads' stacks now (to its stderr)."""
    if p.poll() is None:
        os.kill(p.pid, STACKS_SIGNAL)
        time.sleep(settle_s)


def _pipe_holders(p: subprocess.Popen[str]) -> list[str]:
    """'pid cmdline' of every process (Linux /proc) that holds `p`'s stdout or stderr pipe open for writing."""
    pipes = set()
    for f in (p.stdout, p.stderr):
        if f is not None:
            pipes.add(f"pipe:[{os.fstat(f.fileno()).st_ino}]")
    held = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if pipes & {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                held.append(f"{pid} {cmd[:200]}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return [h for h in held if not h.startswith(f"{os.getpid()} ")]


def finish_or_explain(p: subprocess.Popen[str], timeout: float, what: str) -> tuple[str, str]:
    """(stdout, stderr) of `p` once it exits and closes its output within `timeout` s; else fail saying why not.

    On a miss: whether `p` itself still runs (then its stacks, STACKS_SIGNAL, see python_m_with_stacks) or exited
    while other processes still hold its stdout/stderr (communicate waits for those too: they are named), then
    SIGKILL to its process group (start it with start_new_session=True) and the test fails with the tail of its
    stderr and stdout."""
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    code = p.poll()
    state = "still running" if code is None else f"exited with {code}, but its output is still held open"
    holders = _pipe_holders(p) if sys.platform.startswith("linux") else []
    stacks_now(p, settle_s=2.0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # a holder outside its process group: read what has come so far
        out, err = "", "(output still held open by the processes named above)"
    raise AssertionError(
        f"{what}: {state} {timeout:.0f} s later (killed); processes holding its stdout/stderr: {holders or 'none'}"
        f"; its threads' stacks and output follow.\n--- stderr (last 30,000 chars) ---\n{err[-30000:]}\n"
        f"--- stdout (last 3,000 chars) ---\n{out[-3000:]}"
    )


def wait_for(what: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """Poll `what()` until it is truthy (returned) or `timeout` seconds passed (its last falsy value returned)."""
    deadline = time.monotonic() + timeout
    while not (got := what()) and time.monotonic() < deadline:
        time.sleep(every)
    return got
