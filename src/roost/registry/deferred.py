"""Work a process runs off its callers' threads for a run (autolog's training metrics and model package): one worker
thread, jobs in submission order, each finished before its run is read (roost.get_run, search_runs…), before its run
ends, before a job with the same key starts a new fit, and at interpreter exit.

A job that raises is logged and tagged on its run (`roost.deferred.error`): nothing is lost silently.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from roost.registry.run import Run

log = logging.getLogger(__name__)

ERROR_TAG = "roost.deferred.error"


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
            atexit.register(wait)  # registered after the run lifecycle's exit hook, so it runs before it
            _atexit_registered = True
        _cond.notify_all()


def wait(run_id: str | None = None, key: Hashable | None = None) -> None:
    """Return once no job of `run_id` (of `key`; with neither, no job at all) is queued or running.

    Called from the worker thread itself (a job ending its own run) it returns at once.
    """
    if threading.current_thread() is _worker:
        return
    with _cond:
        while _busy(run_id, key):
            _cond.wait(1.0)


def _busy(run_id: str | None, key: Hashable | None) -> bool:
    if run_id is not None:
        return _pending_runs[run_id] > 0
    if key is not None:
        return _pending_keys[key] > 0
    return bool(_queue) or any(_pending_runs.values())


def pending() -> int:
    """Jobs queued or running now."""
    with _cond:
        return sum(_pending_runs.values())


def _loop() -> None:
    while True:
        with _cond:
            while not _queue:
                _cond.wait()
            job = _queue.popleft()
        try:
            job.fn()
        except BaseException as exc:  # noqa: BLE001 - recorded on the run; the worker serves the next job
            _record_failure(job, exc)
        finally:
            with _cond:
                _pending_runs[job.run.id] -= 1
                if _pending_runs[job.run.id] <= 0:
                    del _pending_runs[job.run.id]
                if job.key is not None:
                    _pending_keys[job.key] -= 1
                    if _pending_keys[job.key] <= 0:
                        del _pending_keys[job.key]
                _cond.notify_all()


def _record_failure(job: _Job, exc: BaseException) -> None:
    """Log a failed job and tag its run with the error (the store directly: the run may have ended)."""
    from roost.registry.lifecycle import describe_error

    text = describe_error(exc)
    log.warning("roost: run %s: %s failed in the background: %s", job.run.id, job.what, text)
    try:
        job.run.store.log_batch(job.run.id, tags={ERROR_TAG: f"{job.what}: {text}"[:4000]})
    except Exception as tag_exc:  # noqa: BLE001 - the warning above already says what failed
        log.warning("roost: run %s: could not tag the failure: %s", job.run.id, tag_exc)


def _after_fork_in_child() -> None:
    """A forked child has no worker thread and none of its parent's jobs (they belong to the parent)."""
    global _worker, _cond
    _worker = None
    _cond = threading.Condition()
    _queue.clear()
    _pending_runs.clear()
    _pending_keys.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
