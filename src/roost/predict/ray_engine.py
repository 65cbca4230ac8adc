"""The Ray engine: Ray Data reads the files, `map_batches(batch_format="pyarrow")` scores them on the cluster's
workers (the package loaded once per worker process), and `write_parquet` writes the parts."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.predict.score import cached_predictor, prediction_name, score_with_package
from roost.predict.sources import Source, check_columns, parquet_schema_names

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """Import ray, or say how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RoostError("the ray engine needs ray", hint="pip install 'roost[ray]' (or use --engine local)") from exc
    return ray


def run_ray(source: Source, package: Path, out: Path, keep: list[str], batch_size: int = 65536) -> dict[str, int]:
    """Score `source` into `out` with Ray Data; returns rows_in, rows_out, parts."""
    if source.kind == "sql":
        raise RoostError("the ray engine reads Parquet and CSV files, not SQL", hint="use --engine local or spark")
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    pred = cached_predictor(package)
    paths = [str(f.resolve()) for f in source.files]
    if source.kind == "csv":
        ds = ray.data.read_csv(paths)
        names = list(ds.schema().names)
    else:
        names = parquet_schema_names(source.files)
        ds = ray.data.read_parquet(paths).select_columns(list(dict.fromkeys([*pred.inputs, *keep])))
    check_columns(names, pred.inputs, keep, [prediction_name(pred.task)])
    fn = functools.partial(score_table, str(package.resolve()), keep)
    scored = ds.map_batches(fn, batch_format="pyarrow", batch_size=batch_size)
    scored.write_parquet(str(out))
    written = sorted(f for f in out.rglob("*.parquet") if not f.name.startswith("part-"))
    for i, f in enumerate(written):  # Ray's own names -> part-NNNNN.parquet, so every engine's output globs the same
        f.rename(out / f"part-{i:05d}.parquet")
    files = sorted(out.glob("part-*.parquet"))
    import pyarrow.parquet as pq

    n = sum(int(pq.ParquetFile(f).metadata.num_rows) for f in files)
    return {"rows_in": n, "rows_out": n, "parts": len(files)}


def score_table(path: str, keep: list[str], table: Any) -> Any:
    """map_batches function: the scored batch as a pyarrow Table (Ray Data takes Tables, not RecordBatches)."""
    import pyarrow as pa

    return pa.Table.from_batches([score_with_package(path, keep, table)])


__all__ = ["require_ray", "run_ray", "score_table"]
