"""Task output cache keyed on the task's code and the content of its inputs, stored as files under the workspace.

The key hashes the task name, its code with the user code and constants it reaches (roost.pipeline.codehash), its
inputs with files replaced by content hashes and aliases by the versions they point to (roost.pipeline.fingerprint),
and the task's own resolved references (`Task.refs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

_MISS = object()


def _canon(value: Any) -> bytes:
    """A stable byte encoding of task inputs (JSON when possible, else pickle)."""
    try:
        return json.dumps(value, sort_keys=True, default=_default).encode()
    except (TypeError, ValueError):
        return pickle.dumps(value, protocol=4)


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist") and not hasattr(o, "index"):  # numpy arrays and scalars; not a pandas Series/frame,
        return o.tolist()  # whose index .tolist() would drop (those are pickled whole)
    raise TypeError(type(o).__name__)


def cache_key(task_name: str, code_hash: str, inputs: dict[str, Any], refs: dict[str, Any] | None = None) -> str:
    """The cache key of one task execution: code, input contents, resolved references."""
    from roost.pipeline.fingerprint import fingerprint, structure

    h = hashlib.sha256()
    h.update(task_name.encode() + b"\0" + code_hash.encode() + b"\0")
    h.update(_canon(fingerprint(inputs)))
    h.update(b"\0" + _canon(structure(refs or {})))
    return h.hexdigest()[:32]


class TaskCache:
    """Outputs on disk (pickle), one file per key, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> Any:
        """The cached output, or the _MISS sentinel."""
        f = self.root / f"{key}.pkl"
        if not f.is_file():
            return _MISS
        try:
            with open(f, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss
            return _MISS

    def put(self, key: str, value: Any) -> bool:
        """Store an output; returns False when it cannot be pickled (then it is just not cached)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            data = pickle.dumps(value, protocol=4)
        except Exception:  # noqa: BLE001
            return False
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.root / f"{key}.pkl")
        return True


def is_miss(value: Any) -> bool:
    """True for the cache-miss sentinel."""
    return value is _MISS
