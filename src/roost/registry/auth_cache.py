"""A per-process cache of who a token is and what roles an account holds, for the team server on PostgreSQL.

Every request of the server authenticates its token and most check a grant: without a cache that is one or two
database round trips per request, as many as the write it guards. Entries are dropped the moment anything they
depend on changes, in every worker process:

- every write to accounts, tokens, groups, memberships and grants runs `notify(session)` inside its own transaction,
  so PostgreSQL delivers a notification on CHANNEL exactly when (and only if) that transaction commits;
- each server process holds one listener connection (`LISTEN CHANNEL`, a thread of its own) that clears the whole
  cache on each notification;
- a lookup uses the cache only while the listener is connected and has nothing unread: a notification that
  arrived but is not yet processed (its socket is readable) sends the lookup to the database, without a round
  trip to find out; while the listener is down (a restart of PostgreSQL, a terminated backend) the cache is empty
  and unused, and it is cleared again on reconnecting, since notifications sent meanwhile were lost;
- a read that raced with a change is not stored: each clear bumps a generation, and an entry read under an older
  generation is dropped instead of stored.

Token expiry is checked against the cached expiry time on every request. Entries also age out after MAX_AGE_S, a
bound for changes made behind roost's back (SQL typed into psql does not notify). Off on SQLite, where a lookup
is an in-process call (~0.1 ms) and there is no notification channel; off in every process but the server's.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "roost_auth"
MAX_AGE_S = 60.0  # an entry is re-read at least this often (changes made outside roost do not notify)
MAX_ENTRIES = 20_000  # cleared whole past this (a few KB each at most)
RETRY_S = 1.0  # wait between two attempts to reconnect the listener
APPLICATION_NAME = "roost-auth-listener"  # how the listener shows in pg_stat_activity


def notify(session: Session) -> None:
    """Tell every server process that accounts, tokens, groups or grants change with this transaction (PostgreSQL;
    nothing on SQLite). Delivered at commit, never for a transaction that rolls back."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_notify(:c, '')"), {"c": CHANNEL})


class AuthCache:
    """Entries (any hashable key → value) valid while the listener is connected; see the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._generation = 0
        self._fd: int | None = None  # the listener's socket while connected and listening
        self._busy = False  # the listener is reading notifications (entries may be stale until it clears them)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="roost-auth-listener", daemon=True)
        self._thread.start()

    # -- lookups ------------------------------------------------------------------------------------------
    def _usable(self) -> bool:
        fd = self._fd
        if fd is None or self._busy:
            return False
        try:  # a notification waiting on the socket: not processed yet, so no entry can be trusted now
            readable, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def generation(self) -> int | None:
        """The generation to pass to `put` after reading the database; None when the cache is not usable now."""
        return self._generation if self._usable() else None

    def get(self, key: Any) -> Any:
        """The cached value of `key`, or None (absent, too old, or the cache not usable now)."""
        found = self._entries.get(key)
        if found is None or time.monotonic() - found[0] > MAX_AGE_S or not self._usable():
            return None
        return found[1]

    def put(self, generation: int | None, key: Any, value: Any) -> None:
        """Store `value`, read from the database under `generation`, unless something changed since."""
        if generation is None:
            return
        with self._lock:
            if generation != self._generation or self._fd is None:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), value)

    def clear(self) -> None:
        """Forget every entry (and refuse the puts of reads begun before)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    @property
    def listening(self) -> bool:
        """Whether the listener connection is up (entries are used only then)."""
        return self._fd is not None

    def close(self) -> None:
        """Stop the listener (tests); the cache is unused from now on."""
        self._stop.set()
        self._disconnected()

    # -- the listener -------------------------------------------------------------------------------------
    def _disconnected(self) -> None:
        with self._lock:
            self._fd = None
            self._generation += 1
            self._entries.clear()

    def _listen(self) -> None:
        import psycopg

        url = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        told = False  # said once per outage (it retries every RETRY_S)
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    url, autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    fd = conn.pgconn.socket
                    with self._lock:  # what was sent while no one listened is lost: start empty
                        self._generation += 1
                        self._entries.clear()
                        self._fd = fd
                    log.debug("auth cache: listening on %s", CHANNEL)
                    told = False
                    while not self._stop.is_set():
                        readable, _, _ = select.select([fd], [], [], 5.0)
                        if not readable:
                            continue
                        self._busy = True
                        try:
                            for _ in conn.notifies(timeout=0):  # everything already here (and the EOF of a dead one)
                                pass
                            self.clear()
                        finally:
                            self._busy = False
            except Exception as exc:  # noqa: BLE001 - any failure: cache off until the listener is back
                if not self._stop.is_set():
                    (log.debug if told else log.warning)("auth cache off (listener failed: %s); retrying", exc)
                    told = True
            finally:
                self._disconnected()
            self._stop.wait(RETRY_S)


_caches: dict[str, AuthCache] = {}
_caches_lock = threading.Lock()


def enable(url: str) -> AuthCache | None:
    """Start the cache of store `url` in this process (a server worker); None where there is none (not PostgreSQL)."""
    if not url.startswith(("postgresql", "postgres:")):
        return None
    with _caches_lock:
        found = _caches.get(url)
        if found is None:
            found = _caches[url] = AuthCache(url)
        return found


def cache_for(url: str) -> AuthCache | None:
    """The running cache of store `url` in this process, or None (no server here, or not PostgreSQL)."""
    return _caches.get(url)


def disable_all() -> None:
    """Stop every cache of this process (tests)."""
    with _caches_lock:
        for c in _caches.values():
            c.close()
        _caches.clear()


__all__ = ["CHANNEL", "AuthCache", "cache_for", "disable_all", "enable", "notify"]
