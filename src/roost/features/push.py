"""Push: rows of a view's features, as they happen, into the online store and the view's offline log at once.

A push is all or nothing. The rows are checked against the view first (nothing is written on bad input); the log's
files are written under temporary names and renamed, then the online store takes the rows in one transaction; if
that fails the renamed files are removed again. Pushes of one view are serialised (a lock file), so the log's
order is the online store's write order.

Which value wins is the offline join's rule everywhere: the greatest (event time, created time), and at equal times
the later row (pushed rows come after the source's rows, a later push after an earlier one). Online this is the
store's upsert rule (a row replaces the stored one unless it is older); offline `sources.view_rows` adds the log
to the source's rows. Re-pushing rows is idempotent: the log is read deduplicated on (join keys, event time,
created time), the last push winning, and the same row written online again leaves the same value.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from roost.errors import NotFoundError, RoostError, closest
from roost.features import push_log, repo
from roost.features.online_stores.base import MIN_I64

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)


__all__ = ["push", "Pusher", "latest_per_key", "view_specs"]


def view_specs(view: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A registered view's spec and its source's spec; errors name the view and say what to do."""
    spec = repo.get("view", view) if isinstance(view, str) else None
    if spec is None:
        names = list(repo.list_all("view"))
        near = closest(str(view), names)
        raise NotFoundError(
            f"feature view {view!r} is not registered",
            hint=f"did you mean {near!r}?" if near else "run `roost features apply` first",
        )
    src = repo.get("source", spec["source"])
    if src is None:
        raise NotFoundError(f"source {spec['source']!r} of view {view!r} is not registered", hint="run apply again")
    if not src.get("event_time"):
        raise RoostError(
            f"view {view!r} has no event time (its source {src['name']!r} is static): pushed rows need one",
            hint="declare Source(..., event_time='...') for views you push to",
        )
    return spec, src


def latest_per_key(table: pa.Table, keys: list[str]) -> pa.Table:
    """One row per entity: the greatest (__et, __ct), the last such row at equal times (the online write rule)."""
    cols = [table.column(k).to_pylist() for k in keys]
    et = table.column("__et").cast("int64").to_pylist()
    ct = [MIN_I64 if c is None else c for c in table.column("__ct").cast("int64").to_pylist()]
    best: dict[Any, int] = {}
    for i, key in enumerate(zip(*cols)):
        j = best.get(key)
        if j is None or (et[i], ct[i]) >= (et[j], ct[j]):
            best[key] = i
    if len(best) == table.num_rows:
        return table
    return table.take(sorted(best.values()))


class Pusher:
    """Pushes rows of one view (definitions looked up once; reuse it for many pushes, e.g. in a stream consumer)."""

    def __init__(self, view: str, *, online_store: str | None = None) -> None:
        from roost import workspace
        from roost.features.online_stores import open_online_store

        self.spec, self.src = view_specs(view)
        self.view = view
        self.root = workspace.current().root
        self.store = open_online_store(online_store)

    def push(self, rows: Any) -> int:
        """Check `rows` and write them online and to the offline log, all or none; returns the rows pushed."""
        from roost.features.online_stores import ViewData
        from roost.features.push_input import as_table, coerce

        table = coerce(as_table(rows, self.view), self.spec, self.src)
        if table.num_rows == 0:
            return 0
        keys, fields = self.spec["join_keys"], self.spec["fields"]
        online = latest_per_key(table, list(keys))
        with push_log.view_lock(self.root, self.view):
            staged = push_log.stage(self.root, self.view, table)
            staged.commit()
            try:
                self.store.write([ViewData(self.view, keys, fields, online)])
            except BaseException:
                staged.undo()
                raise
        log.debug("pushed %d rows to %s (%d entities online)", table.num_rows, self.view, online.num_rows)
        return int(table.num_rows)


def push(view: str, rows: Any, *, online_store: str | None = None) -> int:
    """Write rows of a view's features to the online store and the offline log atomically; returns the rows pushed."""
    # rows: a pandas DataFrame, an Arrow table, a list of dicts or a dict of columns with the join keys, the
    # source's event-time column (its created-time column optional) and every field
    return Pusher(view, online_store=online_store).push(rows)
