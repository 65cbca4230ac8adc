"""Item/user embeddings from a two-tower model package, written to and read from Parquet."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import NotFoundError, RoostError

VECTOR = "embedding"
META_KEY = b"roost"


@dataclass
class Embeddings:
    """Vectors with their ids and attribute columns (what an index is built from)."""

    ids: np.ndarray
    vectors: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    id_column: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _model(model: Any) -> Any:
    if isinstance(model, (str, Path)):
        from roost.modelpkg import load_model

        return load_model(model)
    return model


def embed(
    model: Any,
    items: str | Path | Any,
    out: str | Path,
    which: str = "item",
    id_column: str | None = None,
    keep: Sequence[str] = (),
    batch_size: int = 8192,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Compute `which`-tower embeddings for every row of `items` (Parquet path or DataFrame) into `out` (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pred = _model(model)
    tower = pred.tower(which)
    wanted = list(dict.fromkeys([*([id_column] if id_column else []), *keep, *tower.inputs]))
    if isinstance(items, (str, Path)):
        p = Path(items)
        if not p.is_file():
            raise NotFoundError(f"items file {p} not found", hint="pass a Parquet file of item rows")
        pf = pq.ParquetFile(p)
        names, total = pf.schema_arrow.names, pf.metadata.num_rows
        cols = [c for c in wanted if c in names]

        def batches() -> Iterator[Any]:
            return iter(pf.iter_batches(batch_size=batch_size, columns=cols))

    else:
        table = pa.Table.from_pandas(items, preserve_index=False)
        names, total = table.column_names, table.num_rows

        def batches() -> Iterator[Any]:
            return iter(table.to_batches(max_chunksize=batch_size))

    missing = [c for c in wanted if c not in names]
    if missing:
        raise RoostError(
            f"items lack column(s) {missing}", hint=f"the {which} tower needs {tower.inputs}; the file has {names}"
        )
    if batch_size < 1:
        raise RoostError(f"batch size must be at least 1, got {batch_size}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    writer = None
    done = 0
    dim = None
    meta = {"model": str(getattr(pred, "path", model)), "which": which, "id_column": id_column}
    try:
        for batch in batches():
            feed = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in tower.inputs}
            emb = np.asarray(tower.run(feed, ["embedding"])["embedding"], np.float32)
            if not np.isfinite(emb).all():
                row = done + int(np.flatnonzero(~np.isfinite(emb).all(1))[0])
                raise RoostError(
                    f"the model produced a non-finite embedding for row {row}", hint="check that row's feature values"
                )
            dim = emb.shape[1]
            arrays = [batch.column(c) for c in [*([id_column] if id_column else []), *keep]]
            vec = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel(), pa.float32()), dim)
            tb = pa.Table.from_arrays([*arrays, vec], names=[*([id_column] if id_column else []), *keep, VECTOR])
            if writer is None:
                schema = tb.schema.with_metadata({META_KEY: json.dumps({**meta, "dim": dim}).encode()})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(tb.cast(writer.schema))
            done += batch.num_rows
            if progress:
                progress(done, total)
        if writer is None:
            raise RoostError("items have no rows", hint="pass a non-empty items file")
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, out)
    return {"rows": done, "dim": dim, "out": str(out), **meta}


def _vectors(col: Any, name: str) -> np.ndarray:
    """A list / fixed-size-list Arrow column as an [n, d] float32 matrix (every row the same length)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(col) == 0 and pa.types.is_null(col.type):  # an empty column has no element type to report
        raise RoostError(f"the embeddings have no rows (column {name!r} is empty)", hint="pass a non-empty file")
    if col.null_count:
        raise RoostError(f"column {name!r} has {col.null_count} empty vector(s)", hint="drop rows without vectors")
    if pa.types.is_fixed_size_list(col.type):
        d = col.type.list_size
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        lens = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        d = int(lens[0]) if len(lens) else 0
        if len(lens) and (lens != d).any():
            i = int(np.flatnonzero(lens != d)[0])
            raise RoostError(
                f"vector in row {i} of {name!r} has {lens[i]} dimensions, row 0 has {d}",
                hint="every vector must have the same dimension",
            )
    else:
        raise RoostError(
            f"column {name!r} is {col.type}, not a list of numbers",
            hint="store each vector as a list column (roost embed writes `embedding`)",
        )
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(len(col), d) if len(col) else np.zeros((0, d), np.float32)


def _npy(p: Path) -> Embeddings:
    """A 2-D real-number .npy array as vectors with row-number ids."""
    hint = "save the vectors with numpy.save as a 2-D float array, one row per item"
    try:
        v = np.load(p)
    except (OSError, ValueError, EOFError) as exc:  # damaged, truncated, or pickled objects (never unpickled)
        raise RoostError(f"cannot read embeddings file {p}: {str(exc)[:200]}", hint=hint) from None
    if not isinstance(v, np.ndarray) or v.ndim != 2 or v.dtype.kind not in "fiu":
        what = f"a {v.ndim}-D {v.dtype} array" if isinstance(v, np.ndarray) else type(v).__name__
        raise RoostError(f"embeddings file {p} holds {what}, not a 2-D array of real numbers", hint=hint)
    return Embeddings(np.arange(len(v), dtype=np.int64), v.astype(np.float32), {}, None, {"source": str(p)})


def read_embeddings(
    source: str | Path | Any,
    id_column: str | None = None,
    vector_column: str | None = None,
    attributes: Sequence[str] | None = None,
) -> Embeddings:
    """Ids, vectors and attribute columns from Parquet (or a DataFrame, or .npy vectors with row-number ids)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[str, Any] = {}
    if isinstance(source, (str, Path)):
        p = Path(source)
        if not p.exists():
            raise NotFoundError(f"embeddings file {p} not found", hint="create one with `roost embed`")
        if p.suffix == ".npy":
            return _npy(p)
        try:
            table = pq.read_table(p)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError
            raise RoostError(
                f"cannot read embeddings file {p}: {str(exc)[:200]}",
                hint="pass a Parquet file (e.g. from `roost embed`) or a .npy array",
            ) from None
        raw = (table.schema.metadata or {}).get(META_KEY)
        meta = {**(json.loads(raw) if raw else {}), "source": str(p)}
    else:
        table = pa.Table.from_pandas(source, preserve_index=False)
    names = table.column_names
    vcol = vector_column or (VECTOR if VECTOR in names else None)
    if vcol is None:
        lists = [
            n
            for n in names
            if pa.types.is_list(table.schema.field(n).type) or pa.types.is_fixed_size_list(table.schema.field(n).type)
        ]
        if len(lists) != 1:
            raise RoostError(
                "cannot tell which column holds the vectors", hint=f"pass --vector-column (one of {names})"
            )
        vcol = lists[0]
    if vcol not in names:
        raise RoostError(f"no vector column {vcol!r}", hint=f"columns: {names}")
    icol = id_column or meta.get("id_column") or ("id" if "id" in names else None)
    if icol is not None and icol not in names:
        raise RoostError(f"no id column {icol!r}", hint=f"columns: {names}")
    vectors = _vectors(table.column(vcol), vcol)
    if icol is None:
        ids = np.arange(table.num_rows, dtype=np.int64)
    else:
        idc = table.column(icol)
        if idc.null_count:
            raise RoostError(f"id column {icol!r} has {idc.null_count} missing value(s)", hint="every item needs an id")
        ids = idc.to_numpy(zero_copy_only=False)
        if ids.dtype.kind not in "iu":
            ids = ids.astype(str).astype(object)
    rest = [n for n in names if n not in (vcol, icol)]
    chosen = rest if attributes is None else list(attributes)
    bad = [a for a in chosen if a not in names or a in (vcol,)]
    if bad:
        raise RoostError(f"no attribute column(s) {bad}", hint=f"columns: {rest}")
    attrs = {a: table.column(a).to_numpy(zero_copy_only=False) for a in chosen if a != icol}
    return Embeddings(ids, vectors, attrs, icol, meta)
