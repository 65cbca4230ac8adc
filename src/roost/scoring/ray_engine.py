"""The Ray engine: Ray Data reads the files, `map_batches(batch_format="pyarrow")` scores them on the cluster's
workers (the package loaded once per worker process), and `write_parquet` writes the parts."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.scoring.score import cached_predictor, prediction_name, score_with_package
from roost.scoring.sources import Source, check_columns, parquet_schema_names

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """Import ray, or say how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RoostError("the ray engine needs ray", hint="pip install 'roost[ray]' (or use --engine local)") from exc
    return ray


def run_ray(
    source: Source,
    package: Path,
    out: Path,
    keep: list[str],
    batch_size: int = 65536,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Score `source` into `out` with Ray Data; returns rows_in, rows_out, parts and start_seconds (what ray.init
    cost, None when Ray was already initialised)."""
    if source.kind == "sql":
        raise RoostError("the ray engine reads Parquet and CSV files, not SQL", hint="use --engine local or spark")
    ray = require_ray()
    start_seconds: float | None = None
    if not ray.is_initialized():
        t0 = time.perf_counter()
        # Ray's own INFO/WARNING lines (start, connect, token auth) go to its session logs, not the terminal
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        start_seconds = time.perf_counter() - t0
    pred = cached_predictor(package)
    paths = [str(f.resolve()) for f in source.files]
    with quiet_ray_data():
        if source.kind == "csv":
            ds = ray.data.read_csv(paths)
            names = list(ds.schema().names)
        else:
            names = parquet_schema_names(source.files)
            ds = ray.data.read_parquet(paths).select_columns(list(dict.fromkeys([*pred.inputs, *keep])))
        check_columns(names, pred.inputs, keep, [prediction_name(pred.task)])
        fn = functools.partial(score_table, str(package.resolve()), keep)
        scored = ds.map_batches(fn, batch_format="pyarrow", batch_size=batch_size)
        with _watch_files(out, progress):
            scored.write_parquet(str(out))
    written = sorted(f for f in out.rglob("*.parquet") if not f.name.startswith("part-"))
    for i, f in enumerate(written):  # Ray's own names -> part-NNNNN.parquet, so every engine's output globs the same
        f.rename(out / f"part-{i:05d}.parquet")
    files = sorted(out.glob("part-*.parquet"))
    import pyarrow.parquet as pq

    n = sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)
    if progress:
        progress(len(files), len(files))
    return {"rows_in": n, "rows_out": n, "parts": len(files), "start_seconds": start_seconds}


@contextmanager
def quiet_ray_data() -> Iterator[None]:
    """Ray Data's console lines below ERROR (execution plans, the logged progress, the warning that its bars are
    off) and its progress bars off meanwhile; its session log file keeps everything. Restored afterwards."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start)
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    logger = logging.getLogger("ray.data")
    consoles = [
        h for h in logger.handlers if type(h) is not logging.FileHandler and isinstance(h, logging.StreamHandler)
    ]
    levels = [h.level for h in consoles]
    for h in consoles:
        h.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved
        for h, level in zip(consoles, levels, strict=True):
            h.setLevel(level)


@contextmanager
def _watch_files(out: Path, progress: Callable[[int, int | None], None] | None, every: float = 0.25) -> Iterator[None]:
    """Report the Parquet files Ray has written so far to `progress` (total unknown until the write ends)."""
    if progress is None:
        yield
        return
    from roost.scoring.polling import polling

    with polling(lambda: progress(sum(1 for _ in out.glob("*.parquet")), None), every, "roost-ray-progress"):
        yield


def score_table(path: str, keep: list[str], table: Any) -> Any:
    """map_batches function: the scored batch as a pyarrow Table (Ray Data takes Tables, not RecordBatches)."""
    import pyarrow as pa

    return pa.Table.from_batches([score_with_package(path, keep, table)])


__all__ = ["quiet_ray_data", "require_ray", "run_ray", "score_table"]
