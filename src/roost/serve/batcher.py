"""Dynamic batching: one model thread; whatever queued while the model ran becomes the next batch (no fixed wait)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable

import numpy as np

from roost.serve.matrixgraph import ColumnFeed

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
Outputs = dict[str, np.ndarray]
Future = asyncio.Future[Outputs]
Result = tuple[Future, Outputs | None, BaseException | None]  # (request future, outputs, or the error)


class _Item:
    """One queued request: its input arrays, row count and the future to resolve."""

    __slots__ = ("inputs", "rows", "fut", "loop")

    def __init__(self, inputs: dict[str, np.ndarray], rows: int, fut: Future, loop: asyncio.AbstractEventLoop) -> None:
        self.inputs = inputs
        self.rows = rows
        self.fut = fut
        self.loop = loop


def _deliver(results: list[Result]) -> None:
    """Resolve futures on their event loop (skips requests whose client went away)."""
    for fut, value, exc in results:
        if fut.done():
            continue
        if value is None:
            fut.set_exception(exc or RuntimeError("the model returned no outputs"))
        else:
            fut.set_result(value)


class BatcherClosed(RuntimeError):
    """Raised by submit() after close(): the caller retries on the model that replaced this one."""


class Batcher:
    """Runs `run` in a dedicated thread over batches of at most `max_rows` rows built from queued requests."""

    def __init__(
        self, run: RunFn, max_rows: int = 64, name: str = "model", on_batch: Callable[[int, int], None] | None = None
    ) -> None:
        self._run = run
        self.max_rows = max(1, int(max_rows))
        self._on_batch = on_batch
        self._q: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        # requests queued and requests answered: equal while the thread is idle (each counter has one writer)
        self._submitted = 0
        self._finished = 0
        self._thread = threading.Thread(target=self._loop, name=f"roost-batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, inputs: dict[str, np.ndarray], rows: int) -> Future:
        """Queue one request; the returned future gets its output arrays (rows of this request only)."""
        if self._closed:
            raise BatcherClosed("model was replaced")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._submitted += 1
        self._q.put(_Item(inputs, rows, fut, loop))
        return fut

    @property
    def idle(self) -> bool:
        """Whether nothing is queued or running (so a request would be a batch of one) and it takes requests."""
        return self._submitted == self._finished and not self._closed

    @property
    def closed(self) -> bool:
        """Whether the batcher stopped taking requests (its model was replaced)."""
        return self._closed

    def run_now(self, inputs: dict[str, np.ndarray], rows: int) -> Outputs:
        """Run one request on the calling thread (no queue, no thread hand-off); counted as a batch of one."""
        out = self._run(inputs)
        if self._on_batch is not None:
            try:
                self._on_batch(rows, 1)
            except Exception:
                log.exception("batch metrics callback failed")
        return out

    def close(self, wait: float | None = None) -> None:
        """Stop taking requests; queued ones still run, then the thread exits."""
        if not self._closed:
            self._closed = True
            self._q.put(None)
        if wait is not None:
            self._thread.join(wait)

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the model thread to end (after close); True when it ended."""
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """Whether the model thread is still running."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        """Take the first queued request (blocking), add whatever else is queued up to max_rows, run, repeat."""
        carry: _Item | None = None
        while True:
            first = carry if carry is not None else self._q.get()
            carry = None
            if first is None:
                return
            if first.fut.done():  # cancelled while queued (a shadow mirror at shutdown): nothing to run it for
                self._finished += 1
                continue
            batch, rows, stop = [first], first.rows, False
            while rows < self.max_rows:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                if item.fut.done():
                    self._finished += 1
                    continue
                if rows + item.rows > self.max_rows:
                    carry = item
                    break
                batch.append(item)
                rows += item.rows
            self._run_batch(batch, rows)
            if stop:
                return

    def _run_one(self, item: _Item) -> Result:
        """Run a single request on its own (also the fallback when a merged batch fails)."""
        try:
            return item.fut, self._run(item.inputs), None
        except Exception as exc:  # noqa: BLE001 - handed to the request, never kills the thread
            return item.fut, None, exc

    def _run_batch(self, batch: list[_Item], rows: int) -> None:
        """Run one merged batch, split the outputs per request and hand them back to each event loop."""
        results: list[Result]
        if len(batch) == 1:
            results = [self._run_one(batch[0])]
        else:
            results = self._run_merged(batch, rows)
        if self._on_batch is not None:
            try:
                self._on_batch(rows, len(batch))
            except Exception:
                log.exception("batch metrics callback failed")
        self._finished += len(batch)  # before delivery: the request that gets its answer finds the batcher idle
        by_loop: dict[asyncio.AbstractEventLoop, list[Result]] = {}
        for item, res in zip(batch, results):
            by_loop.setdefault(item.loop, []).append(res)
        for loop, res_list in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, res_list)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _run_merged(self, batch: list[_Item], rows: int) -> list[Result]:
        """Concatenate inputs row-wise, run once, slice outputs back; on failure run each request alone."""
        keys = batch[0].inputs.keys()
        try:
            merged: dict[str, np.ndarray]
            first = batch[0].inputs
            order = first.order if isinstance(first, ColumnFeed) else None
            mats = [it.inputs.matrix for it in batch if isinstance(it.inputs, ColumnFeed) and it.inputs.order is order]
            if order is not None and len(mats) == len(batch):  # (inputs x rows) matrices in one order: join them
                merged = ColumnFeed(order, np.concatenate(mats, axis=1))
            else:
                merged = {k: np.concatenate([it.inputs[k] for it in batch]) for k in keys}
            out = self._run(merged)
            if any(getattr(v, "ndim", 0) == 0 or v.shape[0] != rows for v in out.values()):
                raise ValueError("an output is not batch-major")
        except Exception:  # noqa: BLE001 - isolate the bad request(s)
            return [self._run_one(it) for it in batch]
        results: list[Result] = []
        off = 0
        for it in batch:
            results.append((it.fut, {k: v[off : off + it.rows] for k, v in out.items()}, None))
            off += it.rows
        return results
