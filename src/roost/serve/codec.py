"""Request values → numpy arrays checked against the signature, with errors that name the input and the problem."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from roost.serve.signature import MISSING, Package, TensorSpec

# Limits on what a request may declare, checked before anything is allocated (docs/serving.md)
MAX_RANK = 8  # dimensions of one input tensor
MAX_ELEMENTS = 1 << 24  # elements of one input tensor (16,777,216); each must also be sent


class HTTPError(Exception):
    """A request problem answered with `status` and a KServe-style {"error": message} body."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def not_allowed(method: str, allow: str, where: str = "here") -> HTTPError:
    """A 405 Method Not Allowed error carrying the Allow header."""
    return HTTPError(405, f"{method} is not allowed {where}; use {allow}", [(b"allow", allow.encode())])


def check_method(method: str, want: str, where: str = "here") -> None:
    """Refuse a method the endpoint does not take (405 with Allow); HEAD is taken wherever GET is (RFC 9110)."""
    if method == want or (method == "HEAD" and want == "GET"):
        return
    raise not_allowed(method, "GET, HEAD" if want == "GET" else want, where)


def bad(message: str) -> HTTPError:
    """A 400 Bad Request error."""
    return HTTPError(400, message)


def element_count(shape: Any, name: str) -> int:
    """Check a declared tensor shape (rank, each dimension, element count) and return its element count."""
    if shape.__class__ is not list or not all(d.__class__ is int and d >= 0 for d in shape):
        raise bad(f"input {name!r}: 'shape' must be a list of non-negative integers, got {shape!r:.60}")
    if len(shape) > MAX_RANK:
        raise bad(f"input {name!r}: 'shape' has {len(shape)} dimensions; at most {MAX_RANK} are accepted")
    count = 1
    for d in shape:
        if d > MAX_ELEMENTS:
            break
        count *= d
    else:
        if count <= MAX_ELEMENTS:
            return count
    raise bad(f"input {name!r}: shape {shape!r:.80} declares more than {MAX_ELEMENTS} elements, the limit per input")


def _no_inf(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Refuse float values that are infinite (sent as such, or too large for the input's dtype)."""
    if arr.size and np.isinf(arr).any():
        lim = float(np.finfo(spec.np_dtype).max)
        raise bad(
            f"input {spec.name!r}: values out of range for {spec.dtype} (|x| > {lim:.4g}) or infinite; "
            "send finite numbers (null = missing)"
        )
    return arr


def _kind_name(kind: str) -> str:
    """A human word for a numpy dtype kind."""
    return {
        "U": "strings",
        "S": "strings",
        "b": "booleans",
        "f": "floats",
        "i": "integers",
        "u": "integers",
        "O": "mixed values",
    }.get(kind, kind)


def _slow_column(values: Any, spec: TensorSpec) -> np.ndarray:
    """Element-by-element conversion for lists with nulls or mixed types (flat lists only)."""
    if not isinstance(values, list) or any(isinstance(v, list) for v in values):
        raise bad(f"input {spec.name!r}: nested or ragged values with nulls are not supported; send a flat list")
    missing = MISSING.get(spec.dtype)
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            if missing is None:
                raise bad(f"input {spec.name!r} ({spec.dtype}): value {i} is null, which {spec.dtype} cannot hold")
            out.append(missing)
        elif spec.dtype == "string":
            if not isinstance(v, str):
                raise bad(f"input {spec.name!r} expects strings but value {i} is {type(v).__name__} {v!r:.40}")
            out.append(v)
        elif spec.dtype == "bool":
            if type(v) is not bool:
                raise bad(f"input {spec.name!r} expects booleans but value {i} is {type(v).__name__} {v!r:.40}")
            out.append(v)
        elif not isinstance(v, (int, float)):
            raise bad(f"input {spec.name!r} expects {spec.dtype} numbers but value {i} is {type(v).__name__} {v!r:.40}")
        else:
            out.append(int(v) if v.__class__ is bool else v)  # true/false are 1/0, as `roost predict` reads them
    if spec.dtype == "string":
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        return arr
    return _numeric(np.asarray(out), spec)


def _numeric(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Cast an inferred numeric array to the spec dtype, refusing lossy or wrong-kind casts."""
    kind = arr.dtype.kind
    target = spec.np_dtype
    if spec.dtype == "bool":
        if kind != "b":
            raise bad(f"input {spec.name!r} expects booleans (true/false) but got {_kind_name(kind)}")
        return arr
    if kind == "b":  # true/false for a numeric input are 1/0: the rule of `roost predict` and of training
        return arr.astype(target)
    if kind not in "fiu":
        raise bad(f"input {spec.name!r} expects {spec.dtype} numbers but got {_kind_name(kind)}")
    if target.kind == "i" and kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise bad(f"input {spec.name!r} expects integers ({spec.dtype}) but got non-integral numbers")
    if target.kind == "i" and arr.size:
        info = np.iinfo(target)
        lo, hi = (float(info.min), -float(info.min)) if kind == "f" else (info.min, info.max + 1)
        if arr.min() < lo or arr.max() >= hi:
            raise bad(f"input {spec.name!r}: values out of range for {spec.dtype}")
    with np.errstate(over="ignore"):  # overflow to inf is detected (and refused) just below
        out = arr.astype(target, copy=False)
    if target.kind == "f":
        _no_inf(out, spec)
    return out


def column(values: Any, spec: TensorSpec) -> np.ndarray:
    """Convert JSON values (a list, possibly nested) for input `spec` to an array of its dtype."""
    if not isinstance(values, list):
        values = [values]
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        raise bad(
            f"input {spec.name!r}: values are ragged or not all numbers/strings; "
            f"send a (nested) list of {spec.dtype} values"
        ) from None
    kind = arr.dtype.kind
    if arr.size == 0 and spec.dtype != "string":  # numpy reads [] as float64: no value to check, take the input's dtype
        return np.empty(arr.shape, dtype=spec.np_dtype)
    if kind == "O":
        return _slow_column(values, spec)
    if spec.dtype == "string":
        if kind != "U":
            if arr.size == 0:
                return np.empty(arr.shape, dtype=object)
            raise bad(f"input {spec.name!r} expects strings but got {_kind_name(kind)}")
        if arr.ndim == 1:  # numpy turns ["a", 1] into ["a", "1"]: insist on real strings
            for i, v in enumerate(values):
                if type(v) is not str:
                    raise bad(f"input {spec.name!r} expects strings but value {i} is {type(v).__name__} {v!r:.40}")
        return arr.astype(object)
    return _numeric(arr, spec)


def columns(items: list[tuple[TensorSpec, Any]]) -> list[np.ndarray]:
    """Convert many JSON columns; flat float32 columns of equal length go through numpy in one call."""
    out: list[Any] = [None] * len(items)
    fast = [
        i
        for i, (spec, v) in enumerate(items)
        if spec.dtype == "float32" and isinstance(v, list) and v and type(v[0]) in (float, int)
    ]
    if len(fast) > 1:  # (numpy reads a true/false among the numbers as 1/0, the rule for numeric inputs)
        try:
            block = np.array([items[i][1] for i in fast])
        except (ValueError, TypeError, OverflowError):
            block = None
        if block is not None and block.ndim == 2 and block.dtype.kind in "fiu":
            with np.errstate(over="ignore"):
                block = block.astype(np.float32)
            if not np.isinf(block).any():  # else some value overflowed float32: found per column below
                for j, i in enumerate(fast):
                    out[i] = block[j]
    for i, (spec, values) in enumerate(items):
        if out[i] is None:
            out[i] = column(values, spec)
    return out


def check_binary_floats(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Apply the non-finite policy to binary float data (NaN is a missing value, infinity a 400), and refuse binary
    BOOL bytes other than 0 and 1 (numpy keeps the byte: a model's Cast would read 2 or 255, not true)."""
    kind = arr.dtype.kind
    if kind == "f":
        return _no_inf(arr, spec)
    if kind == "b" and arr.size and int(arr.view(np.uint8).max()) > 1:
        i = int(np.argmax(arr.view(np.uint8) > 1))
        raise bad(
            f"input {spec.name!r}: BOOL element {i} is the byte {int(arr.view(np.uint8)[i])}; "
            "binary BOOL data is one byte per element, 0 or 1"
        )
    return arr


def conform(arr: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """A column sent as [N, 1] for a [-1] input, or as [N] for a [-1, 1] input, reshaped to the signature's rank."""
    want = spec.shape
    if arr.ndim == 2 and len(want) == 1 and arr.shape[1] == 1:
        return arr.reshape(arr.shape[0])
    if arr.ndim == 1 and len(want) == 2 and want[1] == 1:
        return arr.reshape(arr.shape[0], 1)
    return arr


def check_shape(arr: np.ndarray, spec: TensorSpec) -> None:
    """Raise 400 unless `arr` has the signature's rank and fixed dimensions."""
    if arr.ndim != len(spec.shape):
        raise bad(
            f"input {spec.name!r} has shape {list(arr.shape)} but the model expects {list(spec.shape)} (-1 = any size)"
        )
    for got, want in zip(arr.shape, spec.shape):
        if want >= 0 and got != want:
            raise bad(f"input {spec.name!r} has shape {list(arr.shape)} but the model expects {list(spec.shape)}")


def check_inputs(arrays: dict[str, np.ndarray], pkg: Package) -> int:
    """Check names, shapes and one common batch size for a full input set; returns the batch size."""
    n = -1
    first = pkg.inputs[0].name
    for spec in pkg.inputs:
        arr = arrays.get(spec.name)
        if arr is None:
            missing = [s.name for s in pkg.inputs if s.name not in arrays]
            shown = ", ".join(repr(m) for m in missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise bad(f"missing input {shown}; the model needs {len(pkg.inputs)} inputs: see GET /v2/models/<name>")
        shape = arr.shape
        if len(shape) != len(spec.shape) or any(w >= 0 and g != w for g, w in zip(shape, spec.shape)):
            arr = arrays[spec.name] = conform(arr, spec)
            shape = arr.shape
            check_shape(arr, spec)
        if n < 0:
            n = shape[0]
        elif shape[0] != n:
            raise bad(f"inputs disagree on the batch size: {first!r} has {n} rows, {spec.name!r} has {shape[0]}")
    if len(arrays) != len(pkg.inputs):
        extra = [k for k in arrays if pkg.input(k) is None]
        raise bad(
            f"unknown input {extra[0]!r}; the model's inputs are "
            f"{', '.join(repr(s.name) for s in pkg.inputs[:8])}{' ...' if len(pkg.inputs) > 8 else ''}"
        )
    if n == 0:
        raise bad("the request has 0 rows")
    return n


def decode_bytes(buf: bytes | memoryview, count: int, name: str) -> np.ndarray:
    """Decode V2 binary BYTES data (4-byte little-endian length + bytes, repeated) into an object array of str."""
    off, size = 0, len(buf)
    if count * 4 > size:  # every element has a 4-byte length: refuse before allocating `count` slots
        raise bad(f"input {name!r}: shape declares {count} BYTES elements but the data has only {size} bytes")
    out = np.empty(count, dtype=object)
    for i in range(count):
        if off + 4 > size:
            raise bad(f"input {name!r}: binary BYTES data ends after {i} of {count} elements")
        (ln,) = struct.unpack_from("<I", buf, off)
        off += 4
        if off + ln > size:
            raise bad(f"input {name!r}: binary BYTES element {i} claims {ln} bytes past the end of the data")
        try:
            out[i] = bytes(buf[off : off + ln]).decode("utf-8")
        except UnicodeDecodeError:
            raise bad(f"input {name!r}: BYTES element {i} is not UTF-8 text") from None
        off += ln
    if off != size:
        raise bad(f"input {name!r}: {size - off} extra bytes after {count} BYTES elements")
    return out


def encode_bytes(arr: np.ndarray) -> bytes:
    """Encode an array of strings/bytes as V2 binary BYTES data."""
    parts = []
    for v in arr.reshape(-1):
        b = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)
