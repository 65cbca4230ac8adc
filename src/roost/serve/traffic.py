"""Incremental rollup of the request logs into per-minute traffic (roost.registry.fleets), from remembered offsets.

Request-log files (roost.serve.reqlog) are immutable once they have their final name, so an offset is a row count
per file: each pass lists the files of the served models' recent day folders, asks the registry how many rows of
each are already rolled up, reads only files that have more, and writes the new minute rollups together with the
new offsets (one transaction). A page view reads the rollups, never a log file.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from roost.registry import fleets, sketch
from roost.registry.fleets import Rollup, RollupKey

log = logging.getLogger(__name__)

DAYS_BACK = 1  # besides today's folder, how many earlier UTC days a pass lists (files rotate within a minute)
_FILE = re.compile(r"^\d{6}-(\d+)-\d+\.parquet$")
PRED_PREFIX = "pred_"
_META = ("_ts", "_request_id", "_model", "_version", "_latency_ms")


def prediction_values(table: Any) -> tuple[str | None, np.ndarray]:
    """(output name, one number per row) of what the prediction histogram shows: `probability`, else the positive
    class of a two-column `probabilities` (the largest one of more columns), else the first numeric output."""
    import pyarrow as pa

    names = [n for n in table.column_names if n.startswith(PRED_PREFIX)]
    ordered = [n for n in (PRED_PREFIX + "probability", PRED_PREFIX + "probabilities") if n in names]
    ordered += [n for n in names if n not in ordered]
    for name in ordered:
        col = table[name].combine_chunks()
        typ = col.type
        if pa.types.is_fixed_size_list(typ) and (
            pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type)
        ):
            width = typ.list_size
            flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float64).reshape(-1, width)
            return name[len(PRED_PREFIX) :], flat[:, 1] if width == 2 else flat.max(axis=1)
        if pa.types.is_floating(typ) or pa.types.is_integer(typ) or pa.types.is_boolean(typ):
            return name[len(PRED_PREFIX) :], np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return None, np.zeros(len(table))


def rollup_table(table: Any, rate: float = 1.0) -> dict[RollupKey, Rollup]:
    """Minute rollups of request-log rows: requests (distinct request ids), rows, latency per request, predictions;
    `rate` is the sampling rate the rows were logged at (each logged request stands for 1 / rate answered ones)."""
    out: dict[RollupKey, Rollup] = {}
    if table.num_rows == 0:
        return out
    ts_us = table["_ts"].combine_chunks().cast("int64").to_numpy()
    minutes = ts_us // 60_000_000
    models = np.asarray(table["_model"].to_pylist(), dtype=object)
    versions = np.asarray(table["_version"].to_pylist(), dtype=object)
    rids = np.asarray(table["_request_id"].to_pylist(), dtype=object)
    lat = np.asarray(table["_latency_ms"].to_numpy(zero_copy_only=False), dtype=np.float64)
    pred_name, preds = prediction_values(table)
    group = np.array([f"{m}\x00{v}\x00{t}" for m, v, t in zip(models, versions, minutes)], dtype=object)
    for g in np.unique(group):
        sel = group == g
        model, version, minute = str(g).split("\x00")
        # a request's rows share its id, time and latency: one latency per request
        _, first = np.unique(rids[sel], return_index=True)
        req_lat = lat[sel][first]
        out[(model, version, int(minute))] = Rollup(
            requests=len(first),
            est_requests=len(first) / rate,
            rows=int(sel.sum()),
            latency_ms_sum=float(req_lat.sum()),
            latency=sketch.histogram(req_lat),
            predictions=sketch.histogram(preds[sel]),
            pred_name=pred_name,
        )
    return out


def log_files(
    directory: Path, models: Iterable[str], pids: set[int] | None, now: float | None = None, days: int = DAYS_BACK + 1
) -> list[Path]:
    """Finished request-log files of `models` in today's (and days - 1 earlier) UTC day folders, written by `pids`
    (None: any process)."""
    now = time.time() if now is None else now
    folders = [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * d)) for d in range(days)]
    out = []
    for model in sorted(set(models)):
        for day in folders:
            folder = directory / model / day
            try:
                names = [e.name for e in folder.iterdir()]
            except OSError:
                continue
            for name in sorted(names):
                m = _FILE.match(name)
                if m and (pids is None or int(m.group(1)) in pids):
                    out.append(folder / name)
    return out


def file_rate(pf: Any, default: float) -> float:
    """The sampling rate a request-log file was written at (its `roost.log_rate` metadata; else `default`)."""
    from roost.serve.reqlog import RATE_KEY

    raw = (pf.schema_arrow.metadata or {}).get(RATE_KEY.encode())
    try:
        rate = float(raw) if raw is not None else default
    except ValueError:
        rate = default
    return rate if 0 < rate <= 1 else 1.0


def catch_up(
    store: Any, fleet_id: str, files: list[Path], most_rows: int = 2_000_000, default_rate: float = 1.0
) -> int:
    """Roll up the rows of `files` past their offsets into the registry; returns the rows rolled up (0 when another
    process rolled up the same files meanwhile: its offsets won, nothing is counted twice). `default_rate`: the
    sampling rate of files written before the rate was recorded in them."""
    import pyarrow.parquet as pq

    done = fleets.offsets(store, [str(p) for p in files])
    rollups: dict[RollupKey, Rollup] = {}
    advanced: dict[str, int] = {}
    total = 0
    for path in files:
        try:
            pf = pq.ParquetFile(str(path))
        except Exception as exc:  # noqa: BLE001 - a damaged file is skipped (and told), the others still count
            log.warning("traffic rollup: cannot read %s: %s", path.name, exc)
            continue
        n, start = pf.metadata.num_rows, done.get(str(path), 0)
        if n <= start:
            continue
        if "_latency_ms" not in pf.schema_arrow.names or "_request_id" not in pf.schema_arrow.names:
            advanced[str(path)] = n  # not a request log (e.g. shadow comparisons): never read again
            continue
        cols = [c for c in pf.schema_arrow.names if c in _META or c.startswith(PRED_PREFIX)]
        table = pf.read(columns=cols).slice(start)
        for key, r in rollup_table(table, file_rate(pf, default_rate)).items():
            rollups.setdefault(key, Rollup()).add(r)
        advanced[str(path)] = n
        total += n - start
        if total >= most_rows:  # the rest waits for the next pass: one pass stays short
            break
    if advanced:
        from sqlalchemy.exc import IntegrityError

        try:
            fleets.record(store, fleet_id, rollups, advanced, expected={p: done.get(p, 0) for p in advanced})
        except (fleets.OffsetMoved, IntegrityError) as exc:  # IntegrityError: both inserted a new file's offset
            log.info("traffic rollup: another process rolled up the same files (%s); nothing written", exc)
            return 0
    return total


def catch_up_dir(
    store: Any,
    fleet_id: str,
    directory: Path,
    models: Iterable[str] | None = None,
    days: int = DAYS_BACK + 1,
    default_rate: float = 1.0,
    now: float | None = None,
) -> int:
    """Roll up every finished request-log file under `directory` (of `models`, else every model folder; the last
    `days` UTC days) whoever wrote it: the files a killed fleet finished but never rolled up. Idempotent: the
    stored offsets say what is already counted."""
    names = sorted(set(models)) if models is not None else sorted(p.name for p in directory.iterdir() if p.is_dir())
    total = 0
    while True:  # catch_up stops a pass at most_rows: go on until nothing is left
        files = log_files(directory, names, None, now=now, days=days)
        got = catch_up(store, fleet_id, files, default_rate=default_rate)
        total += got
        if got == 0:
            return total
