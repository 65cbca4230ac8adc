"""`compact(view)`: merge each event day's pushed files into one, so the offline log does not grow a file per push.

Protocol (a concurrent reader never sees a gap, and duplicates it may see change nothing):
1. Under the view's push lock, list the day's committed files (a push in flight is either listed whole or not at
   all: a push that fails removes its file under that lock). Pushes after this go to new files, left alone.
2. Merge the listed files, deduplicated by the log's own rule — one row per (join keys, event time, created time),
   the last push winning — keeping each row's `__batch` and `__row`, so the merged file orders and wins exactly
   as its rows did; write it under a temporary name and rename it in.
3. Mark the merged-away files superseded in `superseded.json` (written whole, then renamed): readers skip them.
   A reader that listed the files before step 3 reads them and the merged file together: every merged row
   duplicates a row it already has, same batch and position, which the log's deduplication collapses.
4. Delete superseded files only `grace_s` seconds after they were marked (a later compaction does it), so a
   reader that listed them just before step 3 can still open them.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from roost.features import push_log
from roost.features.sql_text import lit, q

log = logging.getLogger(__name__)

MANIFEST = push_log.SUPERSEDED
DEFAULT_GRACE_S = 300.0

__all__ = ["compact", "superseded", "MANIFEST"]


def _manifest_path(root: Path, view: str) -> Path:
    return push_log.log_dir(root, view) / MANIFEST


def superseded(root: Path, view: str) -> dict[str, float]:
    """Files of the view's log merged into a compacted file ({path relative to the log folder: time marked})."""
    try:
        data = json.loads(_manifest_path(root, view).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()}


def _write_manifest(root: Path, view: str, marks: dict[str, float]) -> None:
    path = _manifest_path(root, view)
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(marks, sort_keys=True))
    os.replace(tmp, path)


def _merge(files: list[str], keys: list[str], out: Path) -> int:
    """Write the files' rows, deduplicated (last push wins, __batch/__row kept), to `out`; returns the rows."""
    import duckdb

    part = ", ".join([q(k) for k in keys] + ["__et", "__ct"])
    listed = "[" + ", ".join(lit(f) for f in files) + "]"
    sql = (
        f"SELECT * FROM read_parquet({listed}, union_by_name = true) "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY __batch DESC, __row DESC) = 1 "
        f"ORDER BY __batch, __row"
    )
    con = duckdb.connect()
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    import pyarrow.parquet as pq

    pq.write_table(table, out)
    return int(table.num_rows)


def compact(view: str, *, day: str | None = None, grace_s: float = DEFAULT_GRACE_S) -> dict[str, Any]:
    """Merge each event day's pushed files of `view` (or only `day`, YYYY-MM-DD) into one file; returns counts."""
    import fcntl

    from roost import workspace
    from roost.errors import RoostError
    from roost.features.push import view_specs

    spec, _ = view_specs(view)
    root = workspace.current().root
    base = push_log.log_dir(root, view)
    stats = dict.fromkeys(("days", "files_merged", "rows_kept", "rows_dropped", "files_deleted"), 0)
    if not base.is_dir():
        return {"view": view, **stats}
    if day is not None and not (base / f"day={day}").is_dir():
        raise RoostError(f"view {view!r} has no pushed rows on {day!r}", hint="give a day as YYYY-MM-DD, or none")
    with open(base / ".compact.lock", "a+b") as lock:  # one compaction of a view at a time
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        marks = superseded(root, view)
        now = time.time()
        for rel, at in list(marks.items()):  # step 4: superseded long enough ago
            if now - at >= grace_s:
                with contextlib.suppress(FileNotFoundError):
                    (base / rel).unlink()
                del marks[rel]
                stats["files_deleted"] += 1
        with push_log.view_lock(root, view):  # step 1
            pattern = str(base / (f"day={day}" if day else "day=*") / "*.parquet")
            listed = [f for f in sorted(glob.glob(pattern)) if os.path.relpath(f, base) not in marks]
        by_day: dict[str, list[str]] = {}
        for f in listed:
            by_day.setdefault(os.path.dirname(f), []).append(f)
        for d, files in sorted(by_day.items()):
            if len(files) < 2:
                continue
            rows_in = _count(files)
            last = Path(files[-1]).name.split(".")[0]
            final = Path(d) / f"{last}.c{time.time_ns()}-{os.getpid()}.parquet"  # a new name: never a listed one
            tmp = Path(d) / f".{final.name}.tmp"
            kept = _merge(files, list(spec["join_keys"]), tmp)
            os.replace(tmp, final)  # step 2
            at = time.time()
            for f in files:  # step 3
                marks[os.path.relpath(f, base)] = at
            _write_manifest(root, view, marks)
            stats["days"] += 1
            stats["files_merged"] += len(files)
            stats["rows_kept"] += kept
            stats["rows_dropped"] += rows_in - kept
            log.info("compacted %d files of %s/%s into %s (%d rows)", len(files), view, Path(d).name, final.name, kept)
        if grace_s <= 0:  # no reader to wait for (tests, or a stopped workspace): delete now
            for rel in list(marks):
                with contextlib.suppress(FileNotFoundError):
                    (base / rel).unlink()
                del marks[rel]
                stats["files_deleted"] += 1
        _write_manifest(root, view, marks)
    return {"view": view, **stats}


def _count(files: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
