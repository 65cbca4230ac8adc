"""Where events come from: one interface (read a bounded batch, ack it, dead-letter, lag), chosen by URL scheme."""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from roost.errors import ConfigError
from roost.features.streaming.events import Event

__all__ = ["EventSource", "SourceURL", "default_consumer", "parse_source"]


@dataclass(frozen=True)
class SourceURL:
    """A parsed `redis://HOST:PORT[/DB]/STREAM` or `kafka://HOST:PORT[,HOST:PORT]/TOPIC[?PROPERTY=VALUE&...]`."""

    scheme: str
    server: str  # redis: the connection URL without the stream; kafka: bootstrap servers
    name: str  # stream or topic
    options: dict[str, str] = field(default_factory=dict)  # kafka: client properties from the query string


class EventSource(ABC):
    """A consumer-group reader: at-least-once delivery, acked after the batch is durably written."""

    dead_name: str  # where bad events go

    @abstractmethod
    def read(self, count: int, block_ms: int) -> list[Event]:
        """Up to `count` events: first the ones delivered before and never acked, then new ones (waits ≤ block_ms)."""

    @abstractmethod
    def ack(self, ids: list[str]) -> None:
        """Mark events done: they are never delivered to this group again."""

    @abstractmethod
    def dead_letter(self, bad: list[tuple[Event, str]]) -> None:
        """Write bad events with their reason to the dead-letter stream/topic and ack them, in one step."""

    @abstractmethod
    def lag(self) -> dict[str, float]:
        """{'lag': events not yet delivered to the group, 'pending': delivered but not acked} (NaN: unknown)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def parse_source(url: str) -> SourceURL:
    """Split a source URL into scheme, server and stream/topic name, or raise naming what is wrong."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hint = "use redis://HOST:PORT/STREAM (or redis://HOST:PORT/DB/STREAM) or kafka://HOST:PORT/TOPIC"
    if scheme not in ("redis", "rediss", "kafka"):
        raise ConfigError(f"unknown stream source {url!r}: scheme {parts.scheme!r}", hint=hint)
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not parts.netloc or not path:
        raise ConfigError(f"stream source {url!r} names no {'topic' if scheme == 'kafka' else 'stream'}", hint=hint)
    if scheme == "kafka":
        if len(path) != 1:
            raise ConfigError(f"kafka source {url!r}: expected one topic after the servers", hint=hint)
        try:
            options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
        except ValueError:
            raise ConfigError(
                f"kafka source {url!r}: the query is not PROPERTY=VALUE pairs",
                hint="e.g. kafka://HOST:PORT/TOPIC?session.timeout.ms=10000&security.protocol=SSL",
            ) from None
        return SourceURL(scheme, parts.netloc, path[0], options)
    db = "0"
    if len(path) == 2 and path[0].isdigit():
        db = path[0]
    elif len(path) != 1:
        raise ConfigError(f"redis source {url!r}: expected /STREAM or /DB/STREAM", hint=hint)
    server = f"{scheme}://{parts.netloc}/{db}" + (f"?{parts.query}" if parts.query else "")
    return SourceURL(scheme, server, path[-1])


def default_consumer(view: str) -> str:
    """A consumer name stable across restarts on one machine, so a restarted consumer re-reads its own pending."""
    return f"{socket.gethostname()}-{view}"
