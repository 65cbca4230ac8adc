"""Work a process runs off its callers' threads for a run (autolog's training metrics and model package): one worker
thread, jobs in submission order, each finished before its run is read (roost.get_run, search_runs…), before its run
ends, before a job with the same key starts a new fit, and at interpreter exit.

A job that raises is logged and tagged on its run (`roost.deferred.error`): nothing is lost silently. A process
stopped by SIGTERM or Ctrl-C waits for its jobs at most ROOST_DEFERRED_STOP_S seconds (default 5): the jobs not done
by then are dropped (one still running is left to the exit) and tagged `roost.deferred.error` on their runs.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger(__name__)

ERROR_TAG = "roost.deferred.error"
STOP_GRACE_S = 5.0  # a stopped process (SIGTERM, Ctrl-C) waits this long for its jobs; ROOST_DEFERRED_STOP_S overrides


@dataclass(frozen=True)
class _Job:
    run: Run
    fn: Callable[[], None]
    what: str
    key: Hashable | None


_cond = threading.Condition()
_queue: deque[_Job] = deque()
_pending_runs: Counter[str] = Counter()  # run id -> jobs queued or running
_pending_keys: Counter[Hashable] = Counter()
_running: _Job | None = None
_dropped_runs: set[str] = set()  # runs whose jobs a stop gave up on: waits for them return at once
_worker: threading.Thread | None = None
_atexit_registered = False


def submit(run: Run, fn: Callable[[], None], what: str, key: Hashable | None = None) -> None:
    """Run fn() on the process's worker thread, after the jobs submitted before it; `what` names it in errors."""
    global _worker, _atexit_registered
    with _cond:
        _queue.append(_Job(run, fn, what, key))
        _pending_runs[run.id] += 1
        if key is not None:
            _pending_keys[key] += 1
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_loop, name="roost-deferred", daemon=True)
            _worker.start()
        if not _atexit_registered:
            atexit.register(_at_exit)  # registered after the run lifecycle's exit hook, so it runs before it
            _atexit_registered = True
        _cond.notify_all()


def wait(run_id: str | None = None, key: Hashable | None = None, timeout: float | None = None) -> bool:
    """Return once no job of `run_id` (of `key`; with neither, no job at all) is queued or running, or after
    `timeout` seconds; True when none is left.

    Called from the worker thread itself (a job ending its own run) it returns at once.
    """
    if threading.current_thread() is _worker:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    with _cond:
        while _busy(run_id, key):
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            _cond.wait(left)
    return True


def _busy(run_id: str | None, key: Hashable | None) -> bool:
    if run_id is not None:
        return run_id not in _dropped_runs and _pending_runs[run_id] > 0
    if key is not None:
        return _pending_keys[key] > 0 and not (_running is not None and _running.run.id in _dropped_runs)
    return any(n > 0 for r, n in _pending_runs.items() if r not in _dropped_runs)


def stop_grace_s() -> float:
    """How long a stopped process waits for its jobs (ROOST_DEFERRED_STOP_S, default STOP_GRACE_S)."""
    raw = os.environ.get("ROOST_DEFERRED_STOP_S")
    try:
        value = float(raw) if raw else STOP_GRACE_S
    except ValueError:
        value = -1.0
    if value >= 0:
        return value
    log.warning("roost: ROOST_DEFERRED_STOP_S=%r is not a number >= 0; using %s s", raw, STOP_GRACE_S)
    return STOP_GRACE_S


def stop(run_id: str | None = None, why: str = "the process was stopped") -> bool:
    """Wait for the jobs of `run_id` (None: all) at most stop_grace_s(), then give up on those left: queued ones
    are dropped, a running one is left to finish or die with the process, and each of their runs is tagged
    ERROR_TAG ("what: not done: why"). Later waits for those runs return at once. True when nothing was left."""
    if wait(run_id, timeout=stop_grace_s()):
        return True
    left: list[_Job] = []
    with _cond:
        keep: deque[_Job] = deque()
        for job in _queue:
            if run_id is None or job.run.id == run_id:
                left.append(job)
                _forget(job)
            else:
                keep.append(job)
        _queue.clear()
        _queue.extend(keep)
        running = _running
        if running is not None and (run_id is None or running.run.id == run_id):
            left.insert(0, running)
            _dropped_runs.add(running.run.id)
        _cond.notify_all()
    grace = stop_grace_s()
    by_run: dict[str, list[_Job]] = {}
    for job in left:
        log.warning("roost: run %s: %s not done: %s (waited %g s)", job.run.id, job.what, why, grace)
        by_run.setdefault(job.run.id, []).append(job)
    for jobs in by_run.values():
        _tag(jobs[0], "\n".join(f"{j.what}: not done: {why} (waited {grace:g} s)" for j in jobs))
    return False


def _at_exit() -> None:
    """At interpreter exit: every job, or, after SIGTERM/Ctrl-C, the jobs that finish within the bound."""
    from roost.registry.lifecycle import runs

    if runs.exit_status == "KILLED":
        stop(why="the process was stopped (SIGTERM or Ctrl-C)")
    else:
        wait()


def pending() -> int:
    """Jobs queued or running now."""
    with _cond:
        return sum(_pending_runs.values())


def _loop() -> None:
    global _running
    while True:
        with _cond:
            while not _queue:
                _cond.wait()
            job = _running = _queue.popleft()
        try:
            job.fn()
        except BaseException as exc:  # noqa: BLE001 - recorded on the run; the worker serves the next job
            _record_failure(job, exc)
        finally:
            with _cond:
                _running = None
                _forget(job)
                _cond.notify_all()


def _forget(job: _Job) -> None:
    """Count a job as no longer pending (called with _cond held)."""
    _pending_runs[job.run.id] -= 1
    if _pending_runs[job.run.id] <= 0:
        del _pending_runs[job.run.id]
    if job.key is not None:
        _pending_keys[job.key] -= 1
        if _pending_keys[job.key] <= 0:
            del _pending_keys[job.key]


def _record_failure(job: _Job, exc: BaseException) -> None:
    """Log a failed job and tag its run with the error (the store directly: the run may have ended)."""
    from roost.registry.lifecycle import describe_error

    text = describe_error(exc)
    log.warning("roost: run %s: %s failed in the background: %s", job.run.id, job.what, text)
    _tag(job, f"{job.what}: {text}")


def _tag(job: _Job, text: str) -> None:
    """Tag the job's run with ERROR_TAG (the store directly: the run may have ended)."""
    try:
        job.run.store.log_batch(job.run.id, tags={ERROR_TAG: text[:4000]})
    except Exception as tag_exc:  # noqa: BLE001 - the warning already says what failed
        log.warning("roost: run %s: could not tag %r: %s", job.run.id, text[:200], tag_exc)


def _after_fork_in_child() -> None:
    """A forked child has no worker thread and none of its parent's jobs (they belong to the parent)."""
    global _worker, _cond, _running
    _worker = _running = None
    _cond = threading.Condition()
    _queue.clear()
    _pending_runs.clear()
    _pending_keys.clear()
    _dropped_runs.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
