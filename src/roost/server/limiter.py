"""Counting failed sign-ins for the login rate limit (per account name and per client address, over the last
minute): in one process, or shared by every worker of one `roost server` through a small SQLite file, so that N
workers do not give an attacker N times the attempts."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections import deque
from typing import Protocol

from roost.server.settings import ServerSettings

WINDOW_S = 60.0
MAX_CACHED_KEYS = 10_000  # blocked() answers kept per connection, at most (then read again)


class Limiter(Protocol):
    """What the sign-in paths ask of a limiter."""

    def blocked(self, keys: list[str]) -> bool:
        """True when any key reached the limit in the last minute."""
        ...

    def failed(self, keys: list[str]) -> None:
        """Count one failed attempt against every key."""
        ...


class LoginLimiter:
    """Failed sign-ins in the last minute, per key ('account:NAME', 'client:ADDR'), in this process; bounded memory."""

    def __init__(self, per_minute: int, max_keys: int = 10_000) -> None:
        self.per_minute, self.max_keys = per_minute, max_keys
        self.fails: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self.fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - WINDOW_S:
            q.popleft()
        return q

    def blocked(self, keys: list[str]) -> bool:
        """True when any key reached the limit in the last 60 s."""
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= self.per_minute for k in keys)

    def failed(self, keys: list[str]) -> None:
        """Count one failed attempt against every key."""
        now = time.monotonic()
        if len(self.fails) >= self.max_keys:
            for k in [k for k, q in self.fails.items() if not q or q[-1] <= now - WINDOW_S]:
                del self.fails[k]
            if len(self.fails) >= self.max_keys:  # a flood of fresh keys: forget the oldest half
                for k in list(self.fails)[: self.max_keys // 2]:
                    del self.fails[k]
        for k in keys:
            self.fails.setdefault(k, deque(maxlen=max(self.per_minute, 1) * 2)).append(now)


class SharedLoginLimiter:
    """The same count kept in a SQLite file that every worker of one server opens (wall-clock times, since the
    workers' monotonic clocks differ); every 64 failures, rows older than the window are pruned and at most
    `max_rows` are kept.

    blocked() runs on every HTTP Basic request (MLflow clients send the password each call), on the event loop:
    its answers are kept in memory per key (locked until when) while no failure was recorded anywhere since, which
    `PRAGMA data_version` tells without reading the table (~2 µs instead of two counts, ~12 µs). The answer stays
    exact: only a new failure can lock a key, and time only unlocks it.
    """

    def __init__(self, per_minute: int, path: str, max_rows: int = 100_000) -> None:
        self.per_minute, self.path, self.max_rows = per_minute, path, max_rows
        self._local = threading.local()
        self._inserts = 0
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS fails (key TEXT NOT NULL, t REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS fails_key_t ON fails (key, t)")
            db.execute("CREATE INDEX IF NOT EXISTS fails_t ON fails (t)")

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")  # a count lost to a power cut is harmless
            self._local.db = db
            self._local.version = None  # PRAGMA data_version when `until` was last valid (per connection)
            self._local.until = {}  # key -> wall-clock end of its lockout (0.0: not locked), as of that version
        return db

    def recent(self, key: str) -> int:
        """Failures counted against `key` in the last minute."""
        row = self._db().execute("SELECT count(*) FROM fails WHERE key = ? AND t > ?", (key, time.time() - WINDOW_S))
        return int(row.fetchone()[0])

    def rows(self) -> int:
        """Rows the table holds (for the bound)."""
        return int(self._db().execute("SELECT count(*) FROM fails").fetchone()[0])

    def blocked(self, keys: list[str]) -> bool:
        """True when any key reached the limit in the last 60 s, counted over every worker."""
        db = self._db()
        local = self._local
        version = db.execute("PRAGMA data_version").fetchone()[0]  # changes when another connection commits
        if version != local.version or len(local.until) > MAX_CACHED_KEYS:
            local.version, local.until = version, {}
        now = time.time()
        for k in keys:
            until = local.until.get(k)
            if until is None:
                until = local.until[k] = self._lock_end(db, k, now)
            if until > now:
                return True
        return False

    def _lock_end(self, db: sqlite3.Connection, key: str, now: float) -> float:
        """When `key` stops being blocked if no failure is added: its per_minute-th latest failure + the window."""
        if self.per_minute <= 0:
            return math.inf
        row = db.execute(
            "SELECT t FROM fails WHERE key = ? AND t > ? ORDER BY t DESC LIMIT 1 OFFSET ?",
            (key, now - WINDOW_S, self.per_minute - 1),
        ).fetchone()
        return 0.0 if row is None else float(row[0]) + WINDOW_S

    def failed(self, keys: list[str]) -> None:
        """Count one failed attempt against every key; prune what the window no longer needs."""
        now = time.time()
        self._local.until = {}  # this connection's own commits leave its data_version as it was
        with self._db() as db:
            db.executemany("INSERT INTO fails (key, t) VALUES (?, ?)", [(k, now) for k in keys])
            self._inserts += 1
            if self._inserts % 64 == 0:
                db.execute("DELETE FROM fails WHERE t <= ?", (now - WINDOW_S,))
                over = db.execute("SELECT count(*) FROM fails").fetchone()[0] - self.max_rows
                if over > 0:  # a flood of fresh names: forget the oldest rows
                    db.execute("DELETE FROM fails WHERE rowid IN (SELECT rowid FROM fails ORDER BY t LIMIT ?)", (over,))


def login_limiter(settings: ServerSettings) -> Limiter:
    """The limiter of one sign-in path: shared by the server's workers when `roost server` gave them a file."""
    if settings.limiter_path:
        return SharedLoginLimiter(settings.login_attempts_per_minute, settings.limiter_path)
    return LoginLimiter(settings.login_attempts_per_minute)
