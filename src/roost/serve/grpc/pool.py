"""The executor of the gRPC server's calls: a few hot threads for short calls, one more for each call that waits.

Why not `ThreadPoolExecutor(64)`: under h2load at 16 connections, each ModelInfer woke one of the pool's idle threads
(its queue hands every new call to a sleeping thread): 8-16 voluntary context switches per 1-row call against 4-5
with 4 threads, whose busy threads take the next call from the queue without sleeping (bench/RESULTS.md, #35). But
a call that waits (a ModelStreamInfer stream between messages, a call waiting on the event loop) holds its thread,
and 4 open streams would starve every other call; so a thread about to wait says so (`with pool.blocking():`) and
the pool may run one more thread while it waits, up to `most` threads in all.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_Item = tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class CallPool(concurrent.futures.Executor):
    """`hot` threads take calls from one queue; a thread inside `blocking()` does not count against `hot`."""

    def __init__(self, hot: int, most: int, name: str = "roost-grpc") -> None:
        if not 0 < hot <= most:
            raise ValueError(f"need 0 < hot <= most threads, got hot={hot}, most={most}")
        self.hot, self.most, self._name = hot, most, name
        self._q: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0  # alive
        self._idle = 0  # waiting on the queue
        self._blocked = 0  # inside blocking()
        self._waiting = threading.local()
        self._shut = False
        self._started = 0  # threads ever started (names)
        self._alive: set[threading.Thread] = set()

    @property
    def threads(self) -> int:
        """Threads alive now."""
        return self._threads

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Queue fn(*args, **kwargs); a new thread starts only when none is idle and fewer than `hot` can work."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new calls after shutdown")
            self._q.put((fut, fn, args, kwargs))
            if self._idle == 0:
                self._grow()
        return fut

    def _grow(self) -> None:
        """(under the lock) Start a thread when fewer than `hot` threads are free to work and `most` allows."""
        if self._threads - self._blocked < self.hot and self._threads < self.most:
            self._threads += 1
            self._started += 1
            t = threading.Thread(target=self._work, name=f"{self._name}_{self._started}", daemon=True)
            self._alive.add(t)
            t.start()

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """Mark the calling pool thread as waiting (not running Python) until the block ends: while it waits, the
        pool may run another thread for the queued calls. Nested blocks count once."""
        depth = getattr(self._waiting, "depth", 0)
        self._waiting.depth = depth + 1
        if depth == 0:
            with self._lock:
                self._blocked += 1
                self._grow()
        try:
            yield
        finally:
            self._waiting.depth = depth
            if depth == 0:
                with self._lock:
                    self._blocked -= 1

    def _work(self) -> None:
        """A pool thread: run queued calls; leave when shut down or when more than `hot` threads are free."""
        q, lock = self._q, self._lock
        while True:
            with lock:
                if self._threads - self._blocked > self.hot:  # a waiting call ended: one thread too many
                    self._threads -= 1
                    self._alive.discard(threading.current_thread())
                    return
                self._idle += 1
            item = q.get()
            with lock:
                self._idle -= 1
            if item is None:
                with lock:
                    self._threads -= 1
                    self._alive.discard(threading.current_thread())
                q.put(None)  # wake the next thread to leave too
                return
            fut, fn, args, kwargs = item
            del item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the future, as ThreadPoolExecutor does
                fut.set_exception(exc)
                del exc
            else:
                fut.set_result(result)
                del result
            del fut, fn, args, kwargs

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more calls; cancel the queued ones if asked; threads leave once the queue is empty."""
        with self._lock:
            self._shut = True
        if cancel_futures:
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        self._q.put(None)
        if wait:
            with self._lock:
                alive = list(self._alive)
            for t in alive:
                if t is not threading.current_thread():
                    t.join()
