"""The offline log of pushed rows: Parquet files partitioned by event day under the workspace's state folder.

Layout: `.roost/features/push/<view>/day=YYYY-MM-DD/<batch>.parquet`, one file per push and event day, with the
view's join keys, `__et`, `__ct` (null: no created time), its fields, `__batch` (the push's id, increasing in push
order) and `__row` (position in the push). Files are written under a temporary name and renamed, so a reader sees a
push's file whole or not at all. `sources.view_rows` adds the log's rows after the source's rows, deduplicated
on (keys, event time, created time) with the last push winning: re-pushing a row changes nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.features.sql_text import NEG_INF, lit, q, ts_lit

if TYPE_CHECKING:
    import pyarrow as pa

DAY_US = 86_400_000_000
SUPERSEDED = "superseded.json"  # files merged into a compacted one (push_compact)
_counter = itertools.count()
_thread_lock = threading.Lock()
_made_dirs: set[str] = set()  # day folders this process made (checked with one stat instead of a makedirs)
# one push's file is small and read whole: no compression, dictionaries, statistics or pandas/Arrow schema in the
# footer (together ~40% of the write); DuckDB reads it the same
WRITE_OPTS: dict[str, Any] = {
    "compression": "none",
    "use_dictionary": False,
    "write_statistics": False,
    "store_schema": False,
}


__all__ = ["log_dir", "log_glob", "has_log", "view_lock", "Staged", "stage", "drop_log", "log_files", "with_pushed"]


def log_dir(root: Path, view: str) -> Path:
    """The folder holding a view's pushed rows."""
    from roost.workspace import STATE_DIR

    return root / STATE_DIR / "features" / "push" / view


def log_glob(root: Path, view: str) -> str:
    """The glob matching every committed file of a view's log."""
    return str(log_dir(root, view) / "day=*" / "*.parquet")


def has_log(root: Path, view: str) -> bool:
    """True when the view has at least one committed pushed file."""
    import glob

    return bool(glob.glob(log_glob(root, view)))


_lock_files: dict[tuple[Path, str], tuple[int, int]] = {}  # (root, view) -> (pid, lock file descriptor)


def _lock_fd(root: Path, view: str) -> int:
    """The view's lock file, opened once per process (opening it per push cost ~0.1 ms); a forked child opens its
    own, since flock locks belong to the open file, which a fork shares."""
    key = (root, view)
    got = _lock_files.get(key)
    if got is not None and got[0] == os.getpid():
        return got[1]
    d = log_dir(root, view)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    _lock_files[key] = (os.getpid(), fd)
    return fd


@contextlib.contextmanager
def view_lock(root: Path, view: str) -> Iterator[None]:
    """Serialise pushes of one view across threads and processes (log order == online write order)."""
    import fcntl

    with _thread_lock:
        fd = _lock_fd(root, view)
        if not (log_dir(root, view) / ".lock").exists():  # deleted with the log: reopen, so that every process
            os.close(fd)  # locks the same file
            _lock_files.pop((root, view), None)
            fd = _lock_fd(root, view)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


_last_ns = 0


def _batch_id() -> str:
    """An id that sorts in push order (called under the view lock): wall-clock nanoseconds, never going back
    within a process, then the process and a counter."""
    global _last_ns
    _last_ns = max(time.time_ns(), _last_ns + 1)
    return f"{_last_ns:020d}-{os.getpid():08d}-{next(_counter):08d}"


class Staged:
    """One push's files: written under temporary names, then committed (renamed) or discarded."""

    def __init__(self, pairs: list[tuple[Path, Path]]) -> None:
        self.pairs = pairs  # (temporary path, final path)
        self.committed: list[Path] = []

    def commit(self) -> None:
        """Rename every temporary file to its final name (all of them, or none on error)."""
        try:
            for tmp, final in self.pairs:
                os.replace(tmp, final)
                self.committed.append(final)
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        """Remove what this push wrote: committed files and leftovers."""
        for p in self.committed:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.committed.clear()
        self.discard()

    def discard(self) -> None:
        """Remove temporary files that were not committed."""
        for tmp, _ in self.pairs:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def stage(root: Path, view: str, table: pa.Table) -> Staged:
    """Write `table` (keys, __et, __ct, fields) as one temporary Parquet file per event day."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    batch = _batch_id()
    n = table.num_rows
    table = table.append_column("__batch", pa.array([batch] * n, pa.string()))
    table = table.append_column("__row", pa.array(np.arange(n, dtype=np.int32)))
    et = table.column("__et").cast(pa.int64()).to_numpy()
    days = et // DAY_US
    staged = Staged([])
    uniq = [days[0]] if n and days.min() == days.max() else np.unique(days)  # one day: the usual push
    base = str(log_dir(root, view))
    try:
        for day in uniq:
            part = table if len(uniq) == 1 else table.filter(pa.array(days == day))
            d = f"{base}/day={time.strftime('%Y-%m-%d', time.gmtime(int(day) * 86_400))}"
            if d not in _made_dirs or not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                _made_dirs.add(d)
            tmp, final = Path(f"{d}/.{batch}.parquet.tmp"), Path(f"{d}/{batch}.parquet")
            staged.pairs.append((tmp, final))
            pq.write_table(part, str(tmp), **WRITE_OPTS)
    except BaseException:
        staged.discard()
        raise
    return staged


def _superseded(root: Path, view: str) -> set[str]:
    """Files merged into a compacted file (see push_compact), relative to the view's log folder."""
    import json

    try:
        return set(json.loads((log_dir(root, view) / SUPERSEDED).read_text()))
    except (FileNotFoundError, ValueError):
        return set()


def drop_log(root: Path, view: str) -> int:
    """Delete a view's pushed rows (every committed file); returns the number of files removed."""
    import glob

    files = glob.glob(log_glob(root, view))
    for f in [*files, str(log_dir(root, view) / SUPERSEDED)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f)
    return len(files)


def log_files(root: Path, view: str) -> list[str]:
    """The view's committed log files to read, sorted (files merged into a compacted one left out)."""
    import glob

    files = sorted(glob.glob(log_glob(root, view)))
    gone = _superseded(root, view) if files else set()
    if gone:  # merged into a compacted file (push_compact): reading them too would only add duplicates
        files = [f for f in files if os.path.relpath(f, log_dir(root, view)) not in gone]
    return files


def with_pushed(sql: str, view: dict[str, Any], root: Path, start: datetime | None, end: datetime | None) -> str:
    """The source's rows then the view's pushed rows (`push_log`), numbered after them in push order.

    The log is read deduplicated on (keys, event time, created time), the last push winning; the files are named
    in the SQL (not globbed), so reading it twice reads the same rows.
    """
    from roost.features.definitions import DTYPES

    files = log_files(root, view["name"])
    if not files:
        return sql
    keys, fields = view["join_keys"], view["fields"]
    cast = [f"CAST({q(k)} AS {DTYPES[t][0]}) AS {q(k)}" for k, t in keys.items()]
    cast += [f"CAST({q(f)} AS {DTYPES[t][0]}) AS {q(f)}" for f, t in fields.items()]
    where = [f"{q(k)} IS NOT NULL" for k in keys]
    if start is not None:
        where.append(f"__et >= {ts_lit(start)}")
    if end is not None:
        where.append(f"__et <= {ts_lit(end)}")
    part = ", ".join([q(k) for k in keys] + ["__et", "__ct"])
    listed = "[" + ", ".join(lit(f) for f in files) + "]"
    pushed = (
        f"SELECT {', '.join(cast)}, CAST(__et AS TIMESTAMPTZ) AS __et, "
        f"coalesce(CAST(__ct AS TIMESTAMPTZ), {NEG_INF}) AS __ct, __batch, __row "
        f"FROM read_parquet({listed}, union_by_name = true) WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY __batch DESC, __row DESC) = 1"
    )
    cols = ", ".join([q(k) for k in keys] + ["__et", "__ct", "__rn"] + [q(f) for f in fields])
    return (
        f"WITH __b AS ({sql}) SELECT {cols} FROM (SELECT {cols} FROM __b UNION ALL "
        f"SELECT {', '.join(q(k) for k in keys)}, __et, __ct, "
        f"(SELECT count(*) FROM __b) + row_number() OVER (ORDER BY __batch, __row) AS __rn, "
        f"{', '.join(q(f) for f in fields)} FROM ({pushed})) ORDER BY __rn"
    )
