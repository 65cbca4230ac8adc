"""Calling a function every few seconds from a thread while a block runs (the engines' progress pollers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def polling(call: Callable[[], None], every: float, name: str) -> Iterator[None]:
    """Run `call` every `every` seconds in a daemon thread `name` until the block ends (then the thread is joined)."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every):
            call()

    thread = threading.Thread(target=poll, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
