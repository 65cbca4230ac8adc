"""The ModelInfer hot path: requests of a layout seen before decode with one join and one numpy view, and the
answer is written as protobuf bytes directly (no response message is built).

A request's layout is everything but its tensor bytes and its id: model name and version, each input's name,
datatype and shape, the outputs asked for and the parameters. The first request of a layout is checked in full
(every input named once, FP32 [n] for a float32 column, no typed contents); the verdict is kept under the layout's
serialized bytes, so the next request of that layout only checks its buffers' sizes and values. Profiled at
c=16 (bench/serving.py): the per-input Python walk was a third of roost's own work per gRPC request.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from roost.serve.codec import MAX_ELEMENTS, encode_bytes
from roost.serve.matrixgraph import ColumnFeed
from roost.serve.signature import DTYPE_TO_V2, NUMPY_TO_V2

if TYPE_CHECKING:
    from roost.serve.loader import LoadedModel

MAX_LAYOUTS = 256  # layouts remembered per model (a layout differs per row count); emptied when full


class Layouts:
    """Per served model (held weakly: an evicted or replaced model is not kept alive by this memo), layout bytes ->
    (input names in request order, rows) for the layouts the fast path takes, None for those it does not."""

    def __init__(self) -> None:
        self._seen: weakref.WeakKeyDictionary[LoadedModel, dict[bytes, tuple[tuple[str, ...], int, bool] | None]] = (
            weakref.WeakKeyDictionary()
        )

    def decode(self, model: LoadedModel, req: Any) -> tuple[dict[str, np.ndarray], int] | None:
        """(arrays, rows) for a request whose layout the fast path takes (see fast_raw_inputs), else None. The
        request is left as it came."""
        raw = req.raw_input_contents
        if not raw:
            return None
        parts = list(raw)
        rid = req.id
        req.ClearField("raw_input_contents")
        if rid:
            req.ClearField("id")
        key = req.SerializeToString()
        if rid:
            req.id = rid
        req.raw_input_contents.extend(parts)
        memo = self._seen.get(model)
        if memo is None:
            memo = self._seen[model] = {}
        seen = memo.get(key)
        if seen is None and key not in memo:  # a new layout: the full check decides
            checked = _check(model, req)
            if checked is not None:  # (and whether the columns come in the signature's order)
                cols = model.package.float_columns
                seen = (*checked, cols is not None and list(checked[0]) == list(cols))
            if len(memo) >= MAX_LAYOUTS:
                memo.clear()
            memo[key] = seen
        if seen is None:
            return None
        names, n, in_order = seen
        if len(parts) != len(names) or set(map(len, parts)) != {4 * n}:
            return None
        block = np.frombuffer(b"".join(parts), dtype="<f4").reshape(len(names), n)
        if np.isinf(block).any():  # refused by the general decoder, with its message
            return None
        cols = model.package.float_columns
        if in_order and cols is not None:
            # in the signature's order: a matrix serving graph is fed the block itself (loader._matrix), not
            # the columns stacked again (np.stack cost ~15 us of a 1-row call)
            return ColumnFeed(cols, block), n
        return dict(zip(names, block)), n


def _check(model: LoadedModel, req: Any) -> tuple[tuple[str, ...], int] | None:
    """The layout verdict: (names, rows) when every input of a model whose inputs are all 1-D float32
    columns comes once as FP32 [n] (one n > 0, no typed contents), else None."""
    by_name = model.package.input_map
    inputs = req.inputs
    if len(inputs) != len(by_name):
        return None
    n = -1
    names: list[str] = []
    for inp in inputs:
        spec = by_name.get(inp.name)
        if spec is None or spec.dtype != "float32" or inp.datatype != "FP32" or len(spec.shape) != 1:
            return None
        shape = inp.shape
        if len(shape) != 1 or inp.HasField("contents"):
            return None
        if n < 0:
            n = shape[0]
            if not 0 < n <= MAX_ELEMENTS:
                return None
        elif shape[0] != n:
            return None
        if spec.shape[0] >= 0 and spec.shape[0] != n:
            return None
        names.append(spec.name)
    if len(set(names)) != len(names):
        return None
    return tuple(names), n


def fast_raw_inputs(model: LoadedModel, req: Any) -> tuple[dict[str, np.ndarray], int] | None:
    """(arrays, rows) when a request sends every input of a model whose inputs are all 1-D float32 columns, each once
    as FP32 [n] in raw_input_contents (one n > 0, nothing in contents): one buffer, one numpy view, one check; the set
    is complete and consistent. None for anything else, which decode_request then handles (and explains)."""
    raw = req.raw_input_contents
    seen = _check(model, req)
    if seen is None or len(raw) != len(seen[0]):
        return None
    names, n = seen
    if any(len(r) != 4 * n for r in raw):
        return None
    block = np.frombuffer(b"".join(raw), dtype="<f4").reshape(len(names), n)
    if np.isinf(block).any():
        return None
    return dict(zip(names, block)), n


def _varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (string, bytes, message, packed repeated)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@functools.lru_cache(maxsize=1024)
def _head(name: str, version: str) -> bytes:
    """ModelInferResponse fields 1-2 (model_name, model_version)."""
    return b"".join(field(i, s.encode()) for i, s in ((1, name), (2, version)) if s)


@functools.lru_cache(maxsize=4096)
def _tensor(name: str, datatype: str, shape: tuple[int, ...]) -> bytes:
    """ModelInferResponse field 5: one InferOutputTensor {name, datatype, shape (packed int64)}."""
    body = field(1, name.encode()) + field(2, datatype.encode())
    if shape:
        body += field(3, b"".join(_varint(d) for d in shape))
    return field(5, body)


def encode_response(model: LoadedModel, outputs: dict[str, np.ndarray], wanted: list[str], rid: str) -> bytes:
    """A serialized ModelInferResponse: each output in raw_output_contents (little-endian, BYTES
    length-prefixed), its metadata from a memo; equal to building the message and serializing it."""
    parts = [_head(model.name, model.version)]
    if rid:
        parts.append(field(3, rid.encode()))
    blobs = []
    for name in wanted:
        arr = outputs[name]
        dtype = DTYPE_TO_V2.get(arr.dtype) or NUMPY_TO_V2.get(arr.dtype.name, "BYTES")
        parts.append(_tensor(name, dtype, arr.shape))
        blobs.append(
            encode_bytes(arr) if dtype == "BYTES" else np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()
        )
    parts.extend(field(6, b) for b in blobs)
    return b"".join(parts)
