"""A readers-writer lock: searches share an index, mutations take it alone (waiting writers go first)."""

from __future__ import annotations

import threading
from typing import Any


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers, so writers never starve."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    def read(self) -> _Guard:
        """Context manager holding a read lock."""
        return _Guard(self, False)

    def write(self) -> _Guard:
        """Context manager holding the write lock."""
        return _Guard(self, True)


class _Guard:
    def __init__(self, lock: RWLock, write: bool) -> None:
        self.lock, self.write = lock, write

    def __enter__(self) -> None:
        lk = self.lock
        with lk._cond:
            if self.write:
                lk._waiting += 1
                while lk._writer or lk._readers:
                    lk._cond.wait()
                lk._waiting -= 1
                lk._writer = True
            else:
                while lk._writer or lk._waiting:
                    lk._cond.wait()
                lk._readers += 1

    def __exit__(self, *exc: Any) -> None:
        lk = self.lock
        with lk._cond:
            if self.write:
                lk._writer = False
                lk._cond.notify_all()
            else:
                lk._readers -= 1
                if not lk._readers and lk._waiting:
                    lk._cond.notify_all()
