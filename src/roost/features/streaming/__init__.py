"""Stream consumers: Redis Streams and Kafka events written into a view's online store and offline log.

The public entry point is `roost.features.stream` (`consumer.stream`, also reachable here, loaded on first use); the
modules here stay importable one by one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["stream"]


def __getattr__(name: str) -> Any:
    if name == "stream":
        from roost.features.streaming.consumer import stream

        return stream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
