"""Reclaiming space for gc: remove a run's artifact folder (keeping its model versions' files), measure and
VACUUM the store. Safe when two gc run at once: what the other already removed is skipped, quietly."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

from sqlalchemy import text

from roost import artifacts
from roost.errors import RoostError
from roost.registry.store import Store
from roost.registry.tables import LatestMetric, Metric, Param, Run, Tag

log = logging.getLogger(__name__)


def own_folder(run_id: str, uri: str) -> bool:
    """True when `uri` is the run's own artifact folder as roost (and MLflow) lay it out: .../RUN_ID/artifacts."""
    return uri.rstrip("/").endswith(f"/{run_id}/artifacts")


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def remove_artifacts(run_id: str, uri: str, keep: list[str]) -> None:
    """Remove a run's artifact folder (local or remote), except files under the URIs in `keep`; missing is fine.

    Another gc may remove the same folder at the same time (it resumed this batch as an interrupted gc's): a file
    or folder that is already gone is skipped, quietly.
    """
    if artifacts.is_local(uri):
        root = artifacts.local_path(uri)
        keep_paths = [str(artifacts.local_path(k)) for k in keep]
        if not keep_paths:
            shutil.rmtree(root, ignore_errors=True)
        else:
            # bottom-up; os.walk skips a folder it can no longer list (removed meanwhile)
            for dirpath, dirs, files in os.walk(root, topdown=False):
                here = Path(dirpath)
                for name in files + [d for d in dirs if (here / d).is_symlink()]:
                    if not _under(str(here / name), keep_paths):
                        (here / name).unlink(missing_ok=True)
                if here != root:
                    _rmdir_if_empty(here)
        with_run = root.parent
        if with_run.name == run_id:
            _rmdir_if_empty(with_run)
    else:
        with artifacts.remote(uri) as (fs, path):
            fs.invalidate_cache()
            files = [str(f) for f in fs.find(path)]
            kept = [artifacts.filesystem(k)[1] for k in keep]
            doomed = [f for f in files if not _under(f, kept)]
            if doomed:
                try:
                    fs.rm(doomed)
                except FileNotFoundError as exc:
                    log.debug("gc: some artifacts of run %s were already removed (%s)", run_id, exc)
    from roost.registry.places import staging_dir

    try:
        shutil.rmtree(staging_dir(run_id), ignore_errors=True)
    except RoostError:  # no current workspace: nothing staged here
        pass


def _rmdir_if_empty(path: Path) -> None:
    """Remove the folder `path` if it is empty; one already gone (another gc) or still holding files stays quiet."""
    try:
        path.rmdir()
    except FileNotFoundError:
        log.debug("gc: %s was already removed (another gc at work)", path)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise


def store_size(store: Store) -> int:
    """Bytes the store takes: the SQLite file plus its WAL, or the PostgreSQL database's size."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        db = Path(url.database or "")
        if not url.database or url.database == ":memory:":
            return 0
        return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0)


def run_vacuum(store: Store) -> None:
    """Give freed space back: SQLite VACUUM + WAL truncate; PostgreSQL VACUUM ANALYZE of the run tables."""
    if store.engine.url.get_backend_name() == "sqlite":
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("VACUUM")  # the connection is in autocommit mode (roost issues BEGIN itself)
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.close()
        finally:
            raw.close()
        return
    tables = ", ".join(t.__tablename__ for t in (Run, Param, Tag, Metric, LatestMetric))
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {tables}"))


__all__ = ["own_folder", "remove_artifacts", "run_vacuum", "store_size"]
