"""Group commit for concurrent pushes of one view: pushes that arrive while a commit is in flight join the next one.

Each push is checked on its caller's thread first (`push_input.coerce`), so a bad push fails alone and never joins a
group. The checked tables queue up; the first caller that finds no commit in flight becomes the leader: it takes
the queue (in arrival order, up to `MAX_GROUP_ROWS` rows), writes one Parquet file per event day and one online
transaction for all of them under the view's lock, then wakes the others. Every caller returns only after its
rows are durable in both, and a failed commit fails every caller of that group and leaves nothing behind (the
group is one all-or-none push).

Order is kept: a group's rows are its pushes concatenated in arrival order, numbered by `__row` in one `__batch`,
and the online rows are the latest per entity with the later row winning ties, which is what applying the pushes
one after another would give, online and offline alike.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.features import push_log

if TYPE_CHECKING:
    import pyarrow as pa

    from roost.features.online_stores.base import OnlineStore

log = logging.getLogger(__name__)

MAX_GROUP_ROWS = 200_000  # a group is bounded: later pushes wait for the next one
SMALL = 256  # latest_per_key: up to this many rows a Python dict beats NumPy's sort (0.12 vs 0.2 ms at 100 rows)
_registry: dict[tuple[Any, ...], Committer] = {}
_registry_lock = threading.Lock()


__all__ = ["Committer", "committer", "latest_per_key", "MAX_GROUP_ROWS"]


@dataclass(eq=False)
class _Entry:
    table: pa.Table
    done: bool = False
    error: BaseException | None = None


def latest_per_key(table: pa.Table, keys: list[str]) -> pa.Table:
    """One row per entity: the greatest (__et, __ct), the last such row at equal times (the online write rule)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from roost.features.online_stores.base import MIN_I64

    n = table.num_rows
    if n <= 1:
        return table
    if n <= SMALL:
        return _latest_small(table, keys)
    ks = []
    for k in keys:  # integer codes that are equal exactly where the keys are (text keys dictionary-encoded)
        col = table.column(k).combine_chunks()
        if not pa.types.is_integer(col.type):
            col = pc.dictionary_encode(col).indices
        ks.append(col.to_numpy(zero_copy_only=False))
    et = table.column("__et").cast(pa.int64()).to_numpy()
    ct = pc.fill_null(table.column("__ct").cast(pa.int64()), MIN_I64).to_numpy()
    order = np.lexsort((ct, et, *reversed(ks)))  # stable: at equal keys and times the later row stays later
    last = np.ones(n, dtype=bool)  # the last row of each run of equal keys in sorted order wins
    same = np.ones(n - 1, dtype=bool)
    for k in ks:
        s = k[order]
        same &= s[:-1] == s[1:]
    last[:-1] = ~same
    if last.all():
        return table
    return table.take(pa.array(np.sort(order[last])))


def _latest_small(table: pa.Table, keys: list[str]) -> pa.Table:
    """latest_per_key by a dict over Python values: faster than the sort below for a small push."""

    from roost.features.online_stores.base import MIN_I64

    cols = [table.column(k).to_pylist() for k in keys]
    et = _ints(table.column("__et"))
    ctc = table.column("__ct")
    n = table.num_rows
    ct = [MIN_I64] * n if ctc.null_count == n else [MIN_I64 if c is None else c for c in _ints(ctc)]
    best: dict[Any, int] = {}
    for i, key in enumerate(zip(*cols)):
        j = best.get(key)
        if j is None or (et[i], ct[i]) >= (et[j], ct[j]):
            best[key] = i
    if len(best) == table.num_rows:
        return table
    return table.take(sorted(best.values()))


def _ints(col: pa.ChunkedArray) -> list[int | None]:
    """A timestamp column's int64 values (None for null) without a compute cast when it has no nulls."""
    import numpy as np
    import pyarrow as pa

    if col.null_count == 0 and pa.types.is_timestamp(col.type):
        out: list[int | None] = np.asarray(col.to_numpy()).view(np.int64).tolist()
        return out
    return list(col.cast(pa.int64()).to_pylist())


class Committer:
    """The group-commit queue of one view in one workspace and online store (shared by every Pusher of it)."""

    def __init__(
        self,
        root: Path,
        view: str,
        keys: dict[str, str],
        fields: dict[str, str],
        store: OnlineStore,
        mode: str = "online_and_offline",
    ) -> None:
        self.root, self.view, self.keys, self.fields, self.store = root, view, keys, fields, store
        self.online, self.offline = mode != "offline", mode != "online"
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        self._busy = False
        self.groups = 0  # groups committed or failed (tests and logs)

    def submit(self, table: pa.Table) -> None:
        """Write `table` (already checked) in the next group; returns once it is durable, raises if its group failed."""
        me = _Entry(table)
        with self._cond:
            self._queue.append(me)
            while self._busy and not me.done:
                self._cond.wait()
            if not me.done:  # lead: commit the queue (this push included) with the lock released
                self._busy = True
                group = self._take(me)
                self._cond.release()
                try:
                    self._commit(group)
                except BaseException as exc:
                    self._finish(group, exc)
                    raise
                self._finish(group, None)
                return
        if me.error is None:
            return
        if isinstance(me.error, Exception):
            raise me.error
        from roost.errors import RoostError  # the leader's interrupt: this caller gets an error, not the signal

        raise RoostError(f"push to view {self.view!r} failed with its group: {me.error!r}") from me.error

    def _finish(self, group: list[_Entry], err: BaseException | None) -> None:
        """Mark the group done (with its error) and wake the waiting callers; returns holding the queue's lock."""
        self._cond.acquire()
        self.groups += 1
        for e in group:
            e.done, e.error = True, err
        self._busy = False
        self._cond.notify_all()

    def _take(self, me: _Entry) -> list[_Entry]:
        """The queue's head in arrival order, through `me`, then more pushes while under MAX_GROUP_ROWS rows."""
        n, rows, seen = 0, 0, False
        for e in self._queue:
            if seen and rows + e.table.num_rows > MAX_GROUP_ROWS:
                break
            n, rows, seen = n + 1, rows + e.table.num_rows, seen or e is me
        group, self._queue = self._queue[:n], self._queue[n:]
        return group

    def _commit(self, group: list[_Entry]) -> None:
        """One all-or-none push of the group's rows: the log's files, then one online transaction (or either alone)."""
        import pyarrow as pa

        from roost.features.online_stores import ViewData

        table = group[0].table if len(group) == 1 else pa.concat_tables([e.table for e in group])
        if not self.online:  # offline only: the log's files, under the lock that orders the log
            with push_log.view_lock(self.root, self.view):
                push_log.stage(self.root, self.view, table).commit()
            return
        # the stores' upsert keeps the latest row per entity within one write too (tested against a brute force):
        # reducing first pays only for a group of several pushes (fewer rows to write), not for one small push
        online = table if len(group) == 1 and table.num_rows <= SMALL else latest_per_key(table, list(self.keys))
        if not self.offline:  # online only: no log whose order the lock keeps; the store's upsert orders writes
            self.store.write([ViewData(self.view, self.keys, self.fields, online)])
            return
        with push_log.view_lock(self.root, self.view):
            staged = push_log.stage(self.root, self.view, table)
            staged.commit()
            try:
                self.store.write([ViewData(self.view, self.keys, self.fields, online)])
            except BaseException:
                staged.undo()
                raise
        log.debug(
            "pushed %d rows in %d push(es) to %s (%d entities online)",
            table.num_rows,
            len(group),
            self.view,
            online.num_rows,
        )


def committer(
    root: Path,
    view: str,
    keys: dict[str, str],
    fields: dict[str, str],
    store: OnlineStore,
    mode: str = "online_and_offline",
) -> Committer:
    """The shared Committer of (process, workspace, view, definition, online store, push mode)."""
    import json

    key = (os.getpid(), str(root), view, json.dumps([keys, fields]), id(store), mode)
    with _registry_lock:
        c = _registry.get(key)
        if c is None or c.store is not store:
            c = _registry[key] = Committer(root, view, keys, fields, store, mode)
        return c
