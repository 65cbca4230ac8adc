"""The process's runs: one object owns the active stack, the live set, the flusher/heartbeat thread and exit hooks.

Every open `Run` of the process is registered here. One daemon thread ticks every FLUSH_INTERVAL_S: it writes each
run's buffered metric points (the heartbeat rides in the same transaction) and, for runs with nothing to flush, a
heartbeat every HEARTBEAT_INTERVAL_S (one UPDATE per store for all of them). At process end the open runs are ended
(after waiting for any batch the thread is writing): FINISHED, FAILED after an uncaught exception or sys.exit with a
non-zero code (the error stored in the `roost.error` tag), KILLED after SIGTERM — the rule `with` blocks follow. A
run whose process died without any of that (SIGKILL, os._exit, a crashed machine) is marked LOST by readers once
its heartbeat is older than the timeout (see roost.registry.store).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, NoReturn

from roost.errors import RoostError

if TYPE_CHECKING:
    from roost.registry.interface import TrackingStore as Store
    from roost.registry.run import Run

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
HEARTBEAT_INTERVAL_S = 10.0  # ROOST_HEARTBEAT_INTERVAL_S overrides; the timeout is in roost.registry.store
ERROR_TAG = "roost.error"  # the error that failed a run: "ExcType: message" (and the last frame), ≤ 4,000 chars
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM while runs are open: `with` blocks end their runs KILLED."""


def heartbeat_interval_s() -> float:
    """Seconds between heartbeats of a run with nothing to flush (ROOST_HEARTBEAT_INTERVAL_S, default 10)."""
    raw = os.environ.get("ROOST_HEARTBEAT_INTERVAL_S")
    try:
        value = float(raw) if raw else HEARTBEAT_INTERVAL_S
    except ValueError:
        value = 0.0
    if value > 0:
        return value
    log.warning("roost: ROOST_HEARTBEAT_INTERVAL_S=%r is not a positive number; using %s s", raw, HEARTBEAT_INTERVAL_S)
    return HEARTBEAT_INTERVAL_S


class ExitRequest(SystemExit):
    """What sys.exit raises once runs are open: when it is freed with no Python frame left, it was not caught and
    ended the program, so the exit hook learns the process's exit code (a non-zero code ends open runs FAILED)."""

    def __del__(self) -> None:
        try:
            sys._getframe(1)
        except ValueError:  # no caller frame: freed by the interpreter after the program ended with it
            runs.exit_requested(self.code)
        except Exception:  # noqa: BLE001 - interpreter teardown: nothing to record
            pass


# It stands for the SystemExit the program asked for: tracebacks, logs and stored errors say "SystemExit: 3", as they
# do without roost (a pipeline task's error read "ExitRequest: 3"); `except SystemExit` catches it as before.
ExitRequest.__name__ = ExitRequest.__qualname__ = "SystemExit"
ExitRequest.__module__ = "builtins"


def exit_with_code_seen(status: object = None) -> NoReturn:
    """sys.exit while runs are open: the same exit, with an exception the exit hook can see (ExitRequest)."""
    raise ExitRequest(status)


def describe_error(exc: BaseException) -> str:
    """The text stored in a failed run's `roost.error` tag: the exception and where it was raised."""
    if isinstance(exc, SystemExit):  # sys.exit(3) / sys.exit("message"), whichever class carried it
        text = f"SystemExit: {exc.code}"
    else:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        text += f"\n  at {last.filename}:{last.lineno} in {last.name}"
    return text[:4000]


class Lifecycle:
    """The runs of this process: the active stack (`with` nesting), the live set, flusher, heartbeats, exit."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: the SIGTERM handler may run while the main thread holds it
        self._active: list[Run] = []
        self._live: dict[str, Run] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._hooks_installed = False
        self._prev_sigterm: Callable[[int, FrameType | None], object] | int | None = None
        self.exit_status: str | None = None  # set by SIGTERM, an uncaught exception or a non-zero exit code
        self.exit_error: str | None = None

    # -- the live set ------------------------------------------------------------------------------------
    def register(self, run: Run) -> None:
        """Track an open run: its metrics and heartbeat are written by the background thread."""
        with self._lock:
            self._live[run.id] = run
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="roost-runs", daemon=True)
                self._thread.start()
        if not self._hooks_installed:
            self._install_hooks()

    def unregister(self, run: Run) -> None:
        """Stop tracking a run (it ended or detached) and drop it from the active stack."""
        with self._lock:
            if self._live.get(run.id) is run:
                del self._live[run.id]
            if run in self._active:
                self._active.remove(run)

    def live(self) -> list[Run]:
        """The open runs of this process."""
        with self._lock:
            return list(self._live.values())

    def find(self, run_id: str) -> Run | None:
        """The open run `run_id` of this process, or None."""
        with self._lock:
            return self._live.get(run_id)

    # -- the active stack --------------------------------------------------------------------------------
    def push(self, run: Run) -> None:
        """Make `run` the active run (what roost.log_metric logs to)."""
        with self._lock:
            self._active.append(run)

    def pop(self, run: Run) -> None:
        """Remove `run` from the active stack."""
        with self._lock:
            if run in self._active:
                self._active.remove(run)

    def active(self) -> Run | None:
        """The innermost active run, or None."""
        with self._lock:
            return self._active[-1] if self._active else None

    # -- the background thread ---------------------------------------------------------------------------
    def tick(self) -> None:
        """Flush every live run's buffer (with its heartbeat) and send the heartbeats that are due."""
        now = time.monotonic()
        interval = heartbeat_interval_s()
        due: dict[int, tuple[Store, list[Run]]] = {}
        for run in self.live():
            try:
                if run.flush_pending():
                    run.flush()
                elif now - run.last_heartbeat >= interval:
                    due.setdefault(id(run.store), (run.store, []))[1].append(run)
            except Exception as exc:  # noqa: BLE001 - keep the training loop alive; retried next tick
                log.warning("roost: metric flush of run %s failed, will retry: %s", run.id, exc)
        for store, runs in due.values():
            try:
                store.heartbeat([r.id for r in runs])
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried next tick
                log.warning("roost: heartbeat failed, will retry: %s", exc)
                continue
            for r in runs:
                r.last_heartbeat = now

    def _loop(self) -> None:
        while True:
            self._wake.wait(min(FLUSH_INTERVAL_S, heartbeat_interval_s()))
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # this thread must outlive any one failure
                log.exception("roost: run flusher tick failed")

    # -- process end -------------------------------------------------------------------------------------
    def exit_requested(self, code: object) -> None:
        """The program ended with sys.exit(code): a code other than 0/None fails the runs still open."""
        if code in (None, 0) or self.exit_status is not None or not self.live():
            return
        self.exit_status = "FAILED"
        self.exit_error = f"SystemExit: {code}"[:4000]

    def end_all(self) -> None:
        """End every open run: KILLED after SIGTERM, FAILED after an uncaught exception, else FINISHED."""
        status = self.exit_status or "FINISHED"
        for run in self.live():
            try:
                run.end(status, error=self.exit_error if status == "FAILED" else None)
            except RoostError as exc:  # e.g. the artifact upload failed: the message names the kept folder
                log.error("%s", exc)
            except Exception as exc:  # noqa: BLE001 - the interpreter is exiting; say so and go on
                log.error("roost: could not end run %s: %s", run.id, exc)

    def _install_hooks(self) -> None:
        with self._lock:
            if self._hooks_installed:
                return
            self._hooks_installed = True
        atexit.register(self.end_all)
        # a SystemExit never reaches sys.excepthook and atexit is not told the exit code: sys.exit raises an
        # ExitRequest instead, which records its code when the interpreter frees it uncaught (see ExitRequest)
        if getattr(sys.exit, "__module__", None) == "sys":
            sys.exit = exit_with_code_seen
        prev_hook = sys.excepthook

        def excepthook(tp: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            if self.exit_status is None and self.live():
                self.exit_status = "KILLED" if issubclass(tp, KeyboardInterrupt) else "FAILED"
                self.exit_error = describe_error(exc)
            prev_hook(tp, exc, tb)

        sys.excepthook = excepthook
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                    self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
            except ValueError:  # not the main interpreter
                pass

    def _on_sigterm(self, signum: int, _frame: FrameType | None) -> None:
        if not self.live():  # nothing to save: behave as if the handler were not there
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.exit_status = "KILLED"
        log.warning("roost: SIGTERM: ending %d open run(s) as KILLED", len(self.live()))
        raise Terminated(SIGTERM_EXIT_CODE)


runs = Lifecycle()
"""The process's one Lifecycle: the notebook kernel and the API use its public methods."""
