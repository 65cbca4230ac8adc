"""Materialisation: load each view's latest row per entity into the online store, incrementally from a watermark."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from roost.errors import NotFoundError, RoostError, closest
from roost.features import repo
from roost.features.checks import nan_to_null
from roost.features.definitions import arrow_type
from roost.features.engines import get_engine
from roost.features.local_engine import latest_sql

log = logging.getLogger(__name__)


__all__ = ["MaterializeResult", "aware", "latest_sql", "materialize"]


@dataclass
class MaterializeResult:
    """What one view's materialisation did."""

    view: str
    start: datetime | None
    end: datetime
    rows: int
    written: int
    watermark_moved: bool = True
    data_end: datetime | None = None  # the source's last event time, looked up when the window was empty
    note: str = ""  # what an empty window means and what was done about it ('' when rows were loaded)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "view": self.view,
            "start": None if self.start is None else self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "written": self.written,
            "watermark_moved": self.watermark_moved,
            "data_end": None if self.data_end is None else self.data_end.isoformat(),
            "note": self.note or None,
        }


def aware(t: datetime | str | None, what: str) -> datetime | None:
    """Parse/check a tz-aware time (ISO 8601 with offset or 'Z'); naive times are an error."""
    if t is None:
        return None
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise RoostError(
                f"{what} {t!r} is not an ISO 8601 time", hint="e.g. 2024-01-31T00:00:00Z or 2024-01-31T00:00:00+01:00"
            ) from None
    if not isinstance(t, datetime):
        raise RoostError(f"{what} must be a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
        raise RoostError(
            f"{what} {t.isoformat()} is timezone-naive (a naive/aware mix is an error)",
            hint="give an offset, e.g. 2024-01-31T00:00:00Z, or datetime(..., tzinfo=timezone.utc)",
        )
    return t.astimezone(UTC)


def _window(
    spec: dict[str, Any], src: dict[str, Any], wm: datetime | None, start: datetime | None, end: datetime
) -> tuple[datetime | None, datetime | None]:
    """The event-time window to load and the expiry cutoff (end - ttl) for a view."""
    if not src.get("event_time"):
        return None, None
    ttl = spec.get("ttl_seconds")
    cutoff = end - timedelta(seconds=float(ttl)) if ttl is not None else None
    s = start if start is not None else wm
    if s is None or (cutoff is not None and s < cutoff):
        s = cutoff
    return s, cutoff


def materialize(
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    views: list[str] | None = None,
    online_store: str | None = None,
) -> list[MaterializeResult]:
    """Load each view's latest value per entity (event time in [start, end]) into the online store, atomically."""
    # Without `start`, a view continues from its watermark (the previous end), the first time from end - ttl.
    # Rows older than end - ttl are expired. On any error no watermark moves; the local engine writes all views in
    # one atomic step (the store keeps its values), the Spark engine one bounded chunk at a time (each atomic).
    import pyarrow as pa

    from roost import workspace
    from roost.features.online_stores import ViewData, open_online_store

    ws = workspace.current()
    url = online_store or ws.online_store
    start_t = aware(start, "start")
    end_t = aware(end, "end") or datetime.now(UTC)
    if start_t is not None and start_t > end_t:
        raise RoostError(f"start {start_t.isoformat()} is after end {end_t.isoformat()}")
    specs = repo.list_all("view")
    sources = repo.list_all("source")
    names = list(specs) if not views else list(views)
    for n in names:
        if n not in specs:
            near = closest(n, list(specs))
            raise NotFoundError(
                f"feature view {n!r} is not registered",
                hint=f"did you mean {near!r}?" if near else "run `roost features apply` first",
            )
    if not names:
        raise RoostError("no feature views are registered", hint="run `roost features apply` first")
    store = open_online_store(url)
    engine = get_engine(ws)
    datas: list[ViewData] = []
    results: list[MaterializeResult] = []
    had_watermark: dict[str, bool] = {}
    for n in names:
        spec, src = specs[n], sources[specs[n]["source"]]
        wm_spec = repo.get("watermark", n) or {}
        wm = None
        if wm_spec.get("online_store") == url and store.has_view(n):
            wm = aware(wm_spec.get("watermark"), f"watermark of {n!r}")
        if wm is not None and end_t < wm and start_t is None:
            raise RoostError(
                f"end {end_t.isoformat()} is before view {n!r}'s watermark {wm.isoformat()}",
                hint="the online store already holds later values; pass --start to backfill",
            )
        s, cutoff = _window(spec, src, wm, start_t, end_t)
        static = not src.get("event_time")
        expire = None if cutoff is None else int(cutoff.timestamp() * 1_000_000)
        res = MaterializeResult(n, s, end_t, 0, 0)
        results.append(res)
        had_watermark[n] = wm is not None
        for chunk in engine.latest(spec, src, ws.root, s, None if static else end_t):
            cols = {k: chunk.column(k) for k in chunk.column_names}
            for f, dt in spec["fields"].items():
                cols[f] = nan_to_null(cols[f].cast(arrow_type(dt)))
            data = ViewData(n, spec["join_keys"], spec["fields"], pa.table(cols), expire)
            res.rows += data.table.num_rows
            if engine.chunked:  # bounded driver memory: each chunk is one atomic upsert
                res.written += store.write([data]).get(n, 0)
            else:
                datas.append(data)
        log.debug("view %s: %d latest rows from the %s engine", n, res.rows, engine.name)
    if datas:
        written = store.write(datas)
        for r in results:
            r.written = written.get(r.view, 0)
    for r in results:
        old = repo.get("watermark", r.view) or {}
        prev = aware(old.get("watermark"), "watermark") if old.get("online_store") == url else None
        mark = max(end_t, prev) if prev is not None else end_t
        if r.rows == 0:  # say what the empty window means; a view that never loaded a row gets no watermark
            spec, src = specs[r.view], sources[specs[r.view]["source"]]
            expires = spec.get("ttl_seconds") is not None and bool(src.get("event_time"))
            _explain_empty(r, src, ws.root, mark if had_watermark[r.view] else None, prev, expires)
            log.info("%s", r.note)
            if not r.watermark_moved:
                continue
        repo.put(
            "watermark",
            r.view,
            {
                "watermark": mark.isoformat(),
                "online_store": url,
                "rows": r.rows,
                "start": None if r.start is None else r.start.isoformat(),
                "end": end_t.isoformat(),
                "updated_at": datetime.now(UTC).isoformat(),
                **_online_stats(store, r.view),
            },
        )
        log.info("materialized %s: %d entities (%d written) up to %s", r.view, r.rows, r.written, end_t)
    return results


def _online_stats(store: Any, view: str) -> dict[str, Any]:
    """What the online store holds for a view now (rows, newest event), recorded with the watermark so that pages
    show it without reading the store (roost.ui.features_view); {} when the store cannot tell."""
    try:
        st = store.stats(view)
    except Exception as exc:  # noqa: BLE001 - the values are written; a failed count must not fail the run
        log.warning("online stats of %s not recorded: %s", view, exc)
        return {}
    if not st:
        return {}
    newest = st.get("newest_event")
    return {
        "online_rows": st.get("rows"),
        "newest_event": None if newest is None else datetime.fromtimestamp(newest / 1e6, UTC).isoformat(),
    }


def _explain_empty(
    r: MaterializeResult, src: dict[str, Any], root: Path, mark: datetime | None, prev: datetime | None, expires: bool
) -> None:
    """Fill `r.note` and `r.data_end` for a window that held no rows; `mark`: the watermark to set (None: none)."""
    from roost.features.coverage import event_time_range, fmt_time

    span = event_time_range(src, root)
    r.watermark_moved = mark is not None and mark != prev
    r.data_end = None if span is None else span[1]
    window = f"[{fmt_time(r.start)}, {fmt_time(r.end)}]"
    if span is None:
        where = f"source {src['name']!r} has no rows"
    elif r.start is not None and span[1] < r.start:
        where = f"the data ends at {fmt_time(span[1])}"
    elif span[0] > r.end:
        where = f"the data starts at {fmt_time(span[0])}"
    else:
        where = f"the data spans [{fmt_time(span[0])}, {fmt_time(span[1])}]"
    hint = "pass --start/--end" + (f" (e.g. --end {fmt_time(span[1])})" if span is not None else "")
    if mark is None:
        done = "nothing loaded, watermark not moved"
    else:
        done = f"watermark {'moved to' if r.watermark_moved else 'stays at'} {fmt_time(mark)}"
        done += "; online values older than the ttl expired" if expires else ""
    r.note = f"{r.view}: 0 rows in {window} — {where}; {hint} ({done})"
