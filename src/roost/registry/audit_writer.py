"""The audit log's writer for a server process: rows are queued and written in batches by one background thread.

A write request used to pay for a second transaction (and, on PostgreSQL, a second WAL flush) for its audit row,
and HTTP/1.1 clients waited for it: uvicorn answers a connection's next request only after the previous one's app
call returned. Queued rows are written within `LINGER_S` of each other, in one transaction per batch; `flush()`
waits for everything queued so far (the audit query calls it first, so a process reads its own rows), and the
server flushes at shutdown. What a crashed process (SIGKILL) loses is the rows of its last `LINGER_S`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

from roost.registry.tables import AuditEvent

if TYPE_CHECKING:
    from roost.registry.store import Store

log = logging.getLogger(__name__)

LINGER_S = 0.05  # how long the writer waits for more rows before a batch goes out
MAX_BATCH = 1000  # rows per transaction
MAX_QUEUED = 100_000  # past this, submit writes the row itself (a flood of refusals never grows memory unbounded)


class AuditWriter:
    """One store's queue of audit rows and the daemon thread that writes them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._busy = False  # a batch is being written
        self._hurry = False  # flush() asked: write without lingering
        self._thread: threading.Thread | None = None

    def submit(self, row: dict[str, Any]) -> None:
        """Queue one row (written within LINGER_S); past MAX_QUEUED rows, write it at once in this thread."""
        with self._cond:
            if len(self._rows) < MAX_QUEUED:
                self._rows.append(row)
                self._start()
                self._cond.notify_all()
                return
        self._insert([row])

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every row queued so far is written (False when `timeout` ran out first)."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._rows and not self._busy, timeout)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="roost-audit-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._rows))
                deadline = time.monotonic() + LINGER_S  # let the rows of concurrent requests join this batch
                while not self._hurry and len(self._rows) < MAX_BATCH and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._hurry = False
                batch, self._rows = self._rows[:MAX_BATCH], self._rows[MAX_BATCH:]
                self._busy = True
            try:
                self._insert(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.store.write(durable=False) as s:
                s.execute(insert(AuditEvent), rows)
        except Exception:  # the audit log failing must never turn an answer into an error
            log.exception("audit log insert failed: %d row(s) lost (first: %s)", len(rows), _describe(rows[0]))


def _describe(row: dict[str, Any]) -> str:
    return f"{row.get('action')} {row.get('resource')} -> {row.get('status')}"


_writers: dict[str, AuditWriter] = {}
_lock = threading.Lock()


def writer(store: Store) -> AuditWriter:
    """This process's writer for `store` (one per store URL)."""
    with _lock:
        w = _writers.get(store.url)
        if w is None:
            w = _writers[store.url] = AuditWriter(store)
        return w


def flush_all(timeout: float = 30.0) -> None:
    """Write every queued row of every store (at shutdown)."""
    with _lock:
        writers = list(_writers.values())
    for w in writers:
        if not w.flush(timeout):
            log.error("audit log: rows still queued for %s after %.0f s", w.store.url, timeout)


def flush_store(store: Store) -> None:
    """Write the rows queued for `store`, if this process queued any."""
    with _lock:
        w = _writers.get(store.url)
    if w is not None:
        w.flush()


atexit.register(flush_all)
