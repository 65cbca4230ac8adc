"""Connection limits of every HTTP server roost starts (uvicorn underneath): deadlines for slow clients, a
per-process connection cap answered with HTTP 503, the file-descriptor budget, and counters.

uvicorn alone arms its keep-alive timer only after a response, and any byte cancels it: a connection that never
completes its headers (one header line every few seconds) or never sends a byte stays open forever, and once the
process runs out of descriptors every new client gets a reset. Here one timer per connection, re-armed lazily (at
most one timer event per keep-alive period, none per request), enforces:

- keep-alive: a connection with no request in progress is closed after `keepalive_s` (also a fresh connection);
- headers: a request's headers must be complete `header_timeout_s` after its first byte (else 408 and close);
- body: a request's body must be complete `body_timeout_s` after its headers, plus 1 s per 16 KiB
  received (roost.netpolicy._protocol.BODY_MIN_RATE) (a slow trickle is cut, a large upload at a normal rate is not);
- cap: a connection over `max_connections` gets a short 503 (after its request's headers) and is closed; the cap is
  kept below the descriptor limit (raised to the hard limit at start), so the server keeps answering when full.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

ENV = {
    "header_timeout_s": "ROOST_HTTP_HEADER_TIMEOUT",
    "body_timeout_s": "ROOST_HTTP_BODY_TIMEOUT",
    "keepalive_s": "ROOST_HTTP_KEEPALIVE",
    "max_connections": "ROOST_HTTP_MAX_CONNECTIONS",
}
FLAGS = {
    "header_timeout_s": "--header-timeout",
    "body_timeout_s": "--body-timeout",
    "keepalive_s": "--keepalive",
    "max_connections": "--max-connections",
}
FD_RESERVE = 128  # descriptors kept for everything but client sockets (files, pipes, the store, models, logs)


@dataclass(frozen=True)
class ConnLimits:
    """Slow-client deadlines and the connection cap of one server process."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_s: float = 5.0
    max_connections: int = 2048

    def check(self) -> None:
        """Raise RoostError naming the setting (flag and environment variable) of an impossible value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0 or value == float("inf"):
                raise RoostError(
                    f"{FLAGS[f.name]} / {ENV[f.name]} must be a positive finite number, got {value!r}",
                    hint=f"e.g. {ENV[f.name]}={getattr(ConnLimits, f.name)} (the default)",
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ConnLimits:
        """The limits from ROOST_HTTP_* variables (defaults where unset); `overrides` that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV[f.name], "").strip()
            if overrides.get(f.name) is not None:
                values[f.name] = overrides[f.name]
            elif raw:
                try:
                    values[f.name] = int(raw) if f.name == "max_connections" else float(raw)
                except ValueError:
                    kind = "a whole number" if f.name == "max_connections" else "a number of seconds"
                    raise RoostError(f"{ENV[f.name]}={raw!r} is not {kind}") from None
        limits = cls(**values)
        limits.check()
        return limits


class ConnStats:
    """Connection counts of one server process; a server with metrics overrides the hooks to export them."""

    def __init__(self) -> None:
        self.open = 0
        self.rejecting = 0  # over-cap connections still being answered
        self.rejected = {"cap": 0, "fd": 0}
        self.timed_out = {"header": 0, "body": 0}
        self.idle_closed = 0

    def opened(self) -> None:
        """A connection was accepted under the cap."""
        self.open += 1

    def closed(self) -> None:
        """An accepted connection ended."""
        self.open -= 1

    def reject(self, reason: str) -> None:
        """A connection was refused: `reason` is "cap" (answered 503) or "fd" (closed: no descriptors to spare)."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def timeout(self, phase: str) -> None:
        """A request was cut for arriving too slowly: `phase` is "header" or "body"."""
        self.timed_out[phase] += 1

    def idle(self) -> None:
        """An idle connection was closed after the keep-alive period."""
        self.idle_closed += 1


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit; returns the soft limit now (0: unknown)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError) as exc:
            log.info("cannot raise the descriptor limit from %d to %d: %s", soft, want, exc)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def budget(limits: ConnLimits, nofile: int) -> tuple[int, int]:
    """(connections served, connections answered 503 at once) that fit in `nofile` descriptors (0: unknown)."""
    if nofile <= 0:
        return limits.max_connections, limits.max_connections
    spare = max(16, nofile - FD_RESERVE)
    served = min(limits.max_connections, max(8, spare // 2))
    return served, max(8, spare - served)


def uvicorn_options(limits: ConnLimits, name: str, stats: ConnStats | None = None) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that apply `limits` to a server called `name`."""
    import math

    from roost.netpolicy._protocol import limited_protocol

    limits.check()
    served, rejecting = budget(limits, raise_fd_limit())
    if served < limits.max_connections:
        log.warning("%s: at most %d connections (the descriptor limit leaves no room for more)", name, served)
    return {
        "http": limited_protocol(limits, stats or ConnStats(), name, served, rejecting),
        "ws": "none",  # no roost server speaks WebSocket: upgrades are plain requests
        "timeout_keep_alive": max(1, math.ceil(limits.keepalive_s)),  # uvicorn's own timer, after each response
    }
