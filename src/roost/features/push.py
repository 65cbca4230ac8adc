"""Push: rows of a view's features, as they happen, into the online store and the view's offline log at once.

A push is all or nothing. The rows are checked against the view first (nothing is written on bad input); the log's
files are written under temporary names and renamed, then the online store takes the rows in one transaction; if
that fails the renamed files are removed again. Pushes of one view are serialised (a lock file), so the log's
order is the online store's write order. Concurrent pushes of a view in one process share a group commit
(`push_group`): one log file and one online transaction for the pushes that arrived while the previous commit ran.

Which value wins is the offline join's rule everywhere: the greatest (event time, created time), and at equal times
the later row (pushed rows come after the source's rows, a later push after an earlier one). Online this is the
store's upsert rule (a row replaces the stored one unless it is older); offline `sources.view_rows` adds the log
to the source's rows. Re-pushing rows is idempotent: the log is read deduplicated on (join keys, event time,
created time), the last push winning, and the same row written online again leaves the same value.

Where a push goes is `to=`, Feast's PushMode: "online" (the online store only), "offline" (the offline log only) or
"online_and_offline", the default — training reads the log, so a push that skips it is invisible to `training_set`
and online and offline values may differ (skew) until the rows reach the log some other way.
"""

from __future__ import annotations

import logging
from typing import Any

from roost.errors import NotFoundError, RoostError, closest
from roost.features import repo
from roost.features.push_group import committer, latest_per_key

log = logging.getLogger(__name__)


__all__ = ["push", "Pusher", "latest_per_key", "view_specs", "push_mode", "MODES", "DEFAULT_MODE"]

MODES = ("online", "offline", "online_and_offline")
DEFAULT_MODE = "online_and_offline"
_MODE_HINT = "use to='online', 'offline' or 'online_and_offline' (the default: training_set reads the offline log)"


def push_mode(to: Any) -> str:
    """`to` as one of MODES (Feast's PushMode names and members accepted); a clear error naming `to` otherwise."""
    text = getattr(to, "name", to)  # feast.data_source.PushMode.ONLINE -> "ONLINE"
    if isinstance(text, str) and text.strip().lower() in MODES:
        return text.strip().lower()
    raise RoostError(f"push: 'to' is {to!r}, not a push mode; nothing was written", hint=_MODE_HINT)


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


class Pusher:
    """Pushes rows of one view (definitions looked up once; reuse it for many pushes, e.g. in a stream consumer)."""

    def __init__(self, view: str, *, online_store: str | None = None) -> None:
        from roost import workspace
        from roost.features.online_stores import open_online_store

        self.spec, self.src = view_specs(view)
        self.view = view
        self.root = workspace.current().root
        self.store = open_online_store(online_store)
        self._committers = {
            mode: committer(self.root, view, self.spec["join_keys"], self.spec["fields"], self.store, mode)
            for mode in MODES
        }
        self._committer = self._committers[DEFAULT_MODE]

    def push(self, rows: Any, *, to: Any = DEFAULT_MODE) -> int:
        """Check `rows` and write them where `to` says (online, offline or both), all or none; returns the rows pushed.

        Concurrent pushes of the view join one group commit (`push_group`); this returns once the rows are durable.
        """
        from roost.features.push_input import as_columns, coerce

        mode = push_mode(to)  # checked first: a bad mode writes nothing
        table = coerce(as_columns(rows, self.view), self.spec, self.src)  # a bad push fails here, alone
        if table.num_rows == 0:
            return 0
        self._committers[mode].submit(table)
        return int(table.num_rows)


def push(view: str, rows: Any, *, to: Any = DEFAULT_MODE, online_store: str | None = None) -> int:
    """Write rows of a view's features online and/or to the offline log (`to`), atomically; returns the rows pushed."""
    # rows: a pandas DataFrame, an Arrow table, a list of dicts or a dict of columns with the join keys, the
    # source's event-time column (its created-time column optional) and every field; to: "online", "offline" or
    # "online_and_offline" (the default), Feast's PushMode
    mode = push_mode(to)  # before the view's lookup: a bad mode is the error, whatever else is wrong
    return Pusher(view, online_store=online_store).push(rows, to=mode)
