"""The local engine: streams Parquet row groups / CSV blocks / SQL batches through ONNX Runtime on a thread pool,
writing `part-NNNNN.parquet` files (temp name + rename), skipping parts a previous run completed."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.errors import RoostError
from roost.scoring.score import cached_predictor, output_schema, score_batch
from roost.scoring.sources import (
    Source,
    check_columns,
    check_files_agree,
    check_types,
    csv_schema,
    read_guard,
    sql_error,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int | None], None]


@dataclass
class Part:
    """One unit of output: row groups of one Parquet file, or one whole CSV file."""

    index: int
    file: Path
    row_groups: list[int] = field(default_factory=list)
    rows: int | None = None

    @property
    def name(self) -> str:
        """The final file name of this part."""
        return part_name(self.index)


def part_name(index: int) -> str:
    """`part-NNNNN.parquet`."""
    return f"part-{index:05d}.parquet"


def plan_parts(source: Source, rows_per_part: int) -> list[Part]:
    """Split file inputs into parts: consecutive Parquet row groups up to `rows_per_part` rows; one part per CSV."""
    import pyarrow.parquet as pq

    parts: list[Part] = []
    for f in source.files:
        if source.kind == "csv":
            parts.append(Part(len(parts), f))
            continue
        with read_guard(f):
            md = pq.ParquetFile(f).metadata
        groups: list[int] = []
        rows = 0
        for g in range(md.num_row_groups):
            n = md.row_group(g).num_rows
            if groups and rows + n > rows_per_part:
                parts.append(Part(len(parts), f, groups, rows))
                groups, rows = [], 0
            groups.append(g)
            rows += n
        if groups or md.num_row_groups == 0:
            parts.append(Part(len(parts), f, groups, rows))
    return parts


def _batches(part: Part, kind: str, columns: list[str], batch_size: int) -> Iterator[Any]:
    """Arrow record batches of one part, `batch_size` rows at a time (never the whole file in memory)."""
    if kind == "csv":
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(
            part.file,
            read_options=pcsv.ReadOptions(block_size=1 << 22),
            convert_options=pcsv.ConvertOptions(include_columns=columns),
        )
        for b in reader:
            yield from (b.slice(i, batch_size) for i in range(0, b.num_rows, batch_size))
        return
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(part.file)
    if part.row_groups:
        yield from pf.iter_batches(batch_size=batch_size, row_groups=part.row_groups, columns=columns)


def _read(part: Part, kind: str, columns: list[str], batch_size: int) -> Iterator[Any]:
    """`_batches`, with a reader's failure (torn file, a word in a number column) a RoostError naming the file."""
    with read_guard(part.file):
        yield from _batches(part, kind, columns, batch_size)


def write_part(out: Path, index: int, batches: Iterable[Any], schema: Any) -> int:
    """Write the batches as `part-NNNNN.parquet` through a temp file renamed at the end; returns the rows written."""
    import pyarrow.parquet as pq

    final = out / part_name(index)
    tmp = out / f".{part_name(index)}.{uuid.uuid4().hex[:8]}.tmp"
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for b in batches:
                writer.write_batch(b)
                rows += b.num_rows
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def done_rows(out: Path, index: int) -> int | None:
    """Rows of a completed part (None when the part is missing or unreadable)."""
    import pyarrow.parquet as pq

    f = out / part_name(index)
    if not f.is_file():
        return None
    try:
        return int(pq.ParquetFile(f).metadata.num_rows)
    except (OSError, ValueError):  # a torn file cannot be complete: it is rewritten
        return None


def run_local(
    source: Source,
    package: Path,
    out: Path,
    keep: list[str],
    batch_size: int = 65536,
    rows_per_part: int = 1_000_000,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Score `source` into `out`; returns rows_in, rows_out, parts, parts_skipped."""
    pred = cached_predictor(package)
    if source.kind == "sql":
        return _run_sql(source, package, out, keep, batch_size, rows_per_part, progress)
    in_schema = _file_schema(source)
    first = source.files[0]
    outputs = [output_schema(in_schema, [], pred.task).names[0]]
    check_columns(list(in_schema.names), pred.inputs, keep, outputs, where=str(first))
    check_types(in_schema, pred.dtypes)
    differ, in_schema = check_files_agree(source, in_schema, pred.inputs, keep, pred.dtypes)
    columns = list(dict.fromkeys([*pred.inputs, *keep]))
    schema = output_schema(in_schema, keep, pred.task)
    parts = plan_parts(source, rows_per_part)
    stats = {"rows_in": 0, "rows_out": 0, "parts": len(parts), "parts_skipped": 0}
    todo = []
    for p in parts:
        n = done_rows(out, p.index)
        if n is None:
            todo.append(p)
        else:
            stats["parts_skipped"] += 1
            stats["rows_in"] += n
            stats["rows_out"] += n
    if stats["parts_skipped"]:
        log.info("resuming: %d of %d parts already written", stats["parts_skipped"], len(parts))
    _remove_torn(out)

    def one(p: Part) -> int:
        scored = (score_batch(pred, b, keep) for b in _read(p, source.kind, columns, batch_size))
        if p.file in differ:
            scored = (fit_schema(b, schema, p.file, first) for b in scored)
        return write_part(out, p.index, scored, schema)

    done = stats["parts_skipped"]
    if progress:
        progress(done, len(parts))
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    with ThreadPoolExecutor(n_workers, thread_name_prefix="roost-predict") as pool:
        pending: set[Future[int]] = set()
        queue = iter(todo)
        for p in queue:  # at most n_workers parts in flight: memory stays bounded by workers x batch_size
            pending.add(pool.submit(one, p))
            if len(pending) >= n_workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                done += _collect(finished, stats)
                if progress:
                    progress(done, len(parts))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            done += _collect(finished, stats)
            if progress:
                progress(done, len(parts))
    return stats


def fit_schema(batch: Any, schema: Any, file: Path, first: Path) -> Any:
    """A scored batch of `file` cast to the output `schema` (the first file's types), value by value checked: a
    value that does not fit (a fraction into int64, an int above 2**53 into float64) is a RoostError naming both."""
    import pyarrow as pa

    cols = []
    for f in schema:
        col = batch.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise RoostError(
                    f"column {f.name!r} of {file} does not fit {f.type}, its type in {first.name}: {exc}",
                    hint=f"convert {f.name!r} in one of the files, or score the files separately",
                ) from None
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _remove_torn(out: Path) -> None:
    """Remove the temp files of parts a killed run was writing (they are rewritten; nothing else reads them)."""
    for f in out.glob(".part-*.tmp"):
        f.unlink(missing_ok=True)


def _collect(finished: set[Future[int]], stats: dict[str, int]) -> int:
    for fut in finished:
        n = fut.result()
        stats["rows_in"] += n
        stats["rows_out"] += n
    return len(finished)


def _file_schema(source: Source) -> Any:
    """The Arrow schema of the first input file (CSV: inferred from its first block)."""
    if source.kind == "csv":
        return csv_schema(source.files[0])
    import pyarrow.parquet as pq

    with read_guard(source.files[0]):
        return pq.read_schema(source.files[0])


def _run_sql(
    source: Source,
    package: Path,
    out: Path,
    keep: list[str],
    batch_size: int,
    rows_per_part: int,
    progress: Progress | None,
) -> dict[str, int]:
    """Stream a DuckDB query's result, `rows_per_part` rows a part (resuming needs a deterministic query)."""
    import duckdb

    from roost.scoring import sql_input

    pred = cached_predictor(package)
    con = sql_input.connect(source)
    try:
        try:
            reader = sql_input.relation(con, source).to_arrow_reader(batch_size)
        except duckdb.Error as exc:
            raise sql_error(source.query or "", exc) from exc
        in_schema = reader.schema
        check_columns(list(in_schema.names), pred.inputs, keep, [output_schema(in_schema, [], pred.task).names[0]])
        check_types(in_schema, pred.dtypes)
        schema = output_schema(in_schema, keep, pred.task)
        stats = {"rows_in": 0, "rows_out": 0, "parts": 0, "parts_skipped": 0}
        batches = _aligned(reader, batch_size, rows_per_part)
        head = next(batches, None)
        while head is not None or stats["parts"] == 0:
            index = stats["parts"]
            stats["parts"] += 1
            n = done_rows(out, index)
            if n is None:
                n = write_part(
                    out, index, (score_batch(pred, b, keep) for b in _take(head, batches, rows_per_part)), schema
                )
            else:
                for _ in _take(head, batches, rows_per_part):  # already written: read past its rows
                    pass
                stats["parts_skipped"] += 1
            stats["rows_in"] += n
            stats["rows_out"] += n
            if progress:
                progress(stats["parts"], None)
            head = next(batches, None)
        return stats
    finally:
        con.close()


def _aligned(reader: Iterable[Any], batch_size: int, rows_per_part: int) -> Iterator[Any]:
    """Batches of at most `batch_size` rows, none crossing a multiple of `rows_per_part` (exact part boundaries)."""
    pos = 0
    for b in reader:
        i = 0
        while i < b.num_rows:
            n = min(batch_size, b.num_rows - i, rows_per_part - pos % rows_per_part)
            yield b.slice(i, n)
            i += n
            pos += n


def _take(first: Any, batches: Iterator[Any], limit: int) -> Iterator[Any]:
    """`first`, then batches from `batches` until `limit` rows have been yielded (one part of a stream)."""
    b, taken = first, 0
    while b is not None:
        taken += b.num_rows
        yield b
        if taken >= limit:
            return
        b = next(batches, None)


__all__ = ["Part", "plan_parts", "part_name", "write_part", "done_rows", "run_local", "fit_schema"]
