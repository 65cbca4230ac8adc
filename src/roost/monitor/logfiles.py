"""The one reader of folders of Parquet request logs (serving's request logs and shadow comparisons).

`find` lists the log files a folder, a model's folder, a day folder, a file or a glob names — within the layout
serving writes (``<dir>/<model>/<YYYY-MM-DD>/*.parquet``, so at most two folders deep: pointing it at ``/`` or
``/proc`` does not walk the machine) — and `check` sets aside the files that cannot be read (empty, not Parquet,
cut short by a killed writer or a full disk) with the reason, so one torn file never blocks a whole command.
Readers add files that fail later (a damaged page) with `LogFiles.skip`. Every caller reports the skipped files
the same way: `skipped_note` for people, `LogFiles.skipped_dicts` for JSON, and a warning in the log.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

MAX_DEPTH = 2  # <dir>/<model>/<day>/file.parquet: files at most two folders below the folder given
SHOWN = 5  # skipped files named in a note; the rest are counted
_MAGIC = b"PAR1"
_SMALLEST = 12  # magic, footer length, magic: no Parquet file is shorter
TIME_FORMS = "an ISO date or time in UTC such as 2024-01-08, 2024-01-08T12:30 or 2024-01-08T12:30:00+02:00"


@dataclass
class LogFiles:
    """Readable log files, and the unreadable ones set aside with why (path, reason)."""

    root: str
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skip(self, path: str | Path, exc: BaseException | None) -> None:
        """Set `path` aside (a reader failed on it); it is reported, never read again."""
        p = Path(path)
        why = reason(p, exc)
        log.warning("request log %s is unreadable and was skipped: %s", p, why)
        self.skipped.append((p, why))
        self.files = [f for f in self.files if f != p]

    def name(self, path: Path) -> str:
        """A file's name relative to the folder given (its model and day folders show which one)."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name

    def skipped_dicts(self) -> list[dict[str, str]]:
        """The skipped files as JSON-ready records {file, reason}."""
        return [{"file": str(p), "reason": why} for p, why in self.skipped]

    def note(self) -> str | None:
        """'skipped N unreadable files: a.parquet (empty), …' or None when every file was read."""
        return skipped_note([(self.name(p), why) for p, why in self.skipped])


def skipped_note(skipped: list[tuple[str, str]] | list[dict[str, str]]) -> str | None:
    """One line naming up to SHOWN skipped files with their reasons and counting the rest; None for none."""
    pairs = [(s["file"], s["reason"]) if isinstance(s, dict) else s for s in skipped]
    if not pairs:
        return None
    shown = ", ".join(f"{Path(str(n)).name if os.path.isabs(str(n)) else n} ({why})" for n, why in pairs[:SHOWN])
    more = f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else ""
    return f"skipped {len(pairs)} unreadable file{'s' if len(pairs) != 1 else ''}: {shown}{more}"


def reason(path: Path, exc: BaseException | None = None) -> str:
    """Why a Parquet file cannot be read, in a few words: empty, not Parquet, truncated, permission denied, …"""
    if isinstance(exc, PermissionError):
        return "permission denied"
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4)
            fh.seek(max(0, size - 4))
            tail = fh.read(4)
    except PermissionError:
        return "permission denied"
    except OSError as err:
        return f"cannot open: {err.strerror or type(err).__name__}"
    if size == 0:
        return "empty"
    if head != _MAGIC:
        return "not Parquet"
    if tail != _MAGIC or size < _SMALLEST:
        return "truncated"
    text = str(exc).splitlines()[0] if exc is not None and str(exc) else type(exc).__name__
    return f"damaged: {text[:120]}"


def _walk(root: Path, depth: int, out: list[Path]) -> None:
    """Parquet files under `root`, at most `depth` folders down (hidden entries and unreadable folders skipped)."""
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        log.debug("request-log folder %s not read: %s", root, exc)
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_file() and e.name.endswith(".parquet"):
                out.append(Path(e.path))
            elif depth > 0 and e.is_dir(follow_symlinks=False):
                _walk(Path(e.path), depth - 1, out)
        except OSError:  # an entry that vanished or cannot be stat'ed (as under /proc)
            continue


def find(spec: str | Path, model: str | None = None, what: str = "request-log folder") -> list[Path]:
    """The log files a folder (or its `model` folder), a file or a glob names; RoostError naming `spec` when it is
    not a readable folder, file or pattern."""
    s = str(spec)
    if any(ch in s for ch in "*?["):
        return sorted(Path(f) for f in glob.glob(s, recursive=True) if not os.path.basename(f).startswith("."))
    p = Path(s).expanduser()
    try:
        if p.is_file():
            return [p]
        if not p.exists():
            raise RoostError(
                f"no request log files under {s}: {what} {s} does not exist",
                hint="pass the folder `roost serve --log-requests` wrote",
            )
        if not p.is_dir():
            raise RoostError(f"{what} {s} is not a folder or a Parquet file", hint="pass a request-log folder")
        os.scandir(p).close()
    except PermissionError as exc:
        raise RoostError(f"{what} {s} cannot be read: permission denied", hint="check its permissions") from exc
    except OSError as exc:
        raise RoostError(f"{what} {s} cannot be read: {exc.strerror or exc}", hint="pass a request-log folder") from exc
    if model and (p / model).is_dir():
        p = p / model
    out: list[Path] = []
    _walk(p, MAX_DEPTH, out)
    return sorted(out)


def check(files: list[Path], root: str | Path) -> LogFiles:
    """Open each file's footer; the ones that fail (empty, not Parquet, truncated) are set aside with the reason."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    res = LogFiles(str(root), list(files))
    for f in files:
        try:
            pq.ParquetFile(f).close()
        except (pa.ArrowException, OSError) as exc:
            res.skip(f, exc)
    return res


def open_logs(spec: str | Path, model: str | None = None, what: str = "request-log folder") -> LogFiles:
    """`find` then `check`; RoostError when there is no log file, or when not one of them can be read."""
    files = find(spec, model, what)
    res = check(files, spec if Path(str(spec)).is_dir() else Path(str(spec)).parent)
    if files and not res.files:
        raise all_unreadable(spec, res)
    return res


def all_unreadable(spec: str | Path, res: LogFiles) -> RoostError:
    """The error for log files that exist but none of which can be read."""
    return RoostError(
        f"none of the {len(res.skipped)} log file(s) under {spec} can be read: {res.note()}",
        hint="they are empty, torn or not Parquet; remove them, or pass the folder serving writes",
    )


def parse_time(value: Any, option: str) -> Any:
    """`value` as a UTC pandas Timestamp (naive times are UTC), None for None; RoostError naming `option` when it
    is not a time."""
    import pandas as pd

    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise RoostError(f"{option} {str(value)[:80]!r} is not a time", hint=f"pass {TIME_FORMS}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


__all__ = ["LogFiles", "find", "check", "open_logs", "parse_time", "reason", "skipped_note", "all_unreadable"]
