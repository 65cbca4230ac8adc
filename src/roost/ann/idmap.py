"""External id → slot maps: integer ids in sorted numpy arrays (16 bytes an item), string ids in a dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

Ids: TypeAlias = np.ndarray | Sequence[Any]  # int64 array or a sequence of ids


class IntIdMap:
    """int64 id → slot: a sorted base plus a small dict of recent changes, merged once the dict grows."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.int64)
        self.vals = np.zeros(0, np.int64)
        self.delta: dict[int, int] = {}  # id -> slot, or -1 when removed since the last merge

    def get(self, ids: Ids) -> np.ndarray:
        """Slots of ids (-1 when absent)."""
        arr = np.asarray(ids, np.int64)
        out = np.full(len(arr), -1, np.int64)
        if len(self.keys) and len(arr):
            pos = np.minimum(np.searchsorted(self.keys, arr), len(self.keys) - 1)
            hit = self.keys[pos] == arr
            out[hit] = self.vals[pos[hit]]
        if self.delta and len(arr):
            if len(arr) <= 64:
                for i, v in enumerate(arr.tolist()):
                    s = self.delta.get(v)
                    if s is not None:
                        out[i] = s
            else:
                dk = np.fromiter(self.delta.keys(), np.int64, len(self.delta))
                dv = np.fromiter(self.delta.values(), np.int64, len(self.delta))
                order = np.argsort(dk)
                dk, dv = dk[order], dv[order]
                pos = np.minimum(np.searchsorted(dk, arr), len(dk) - 1)
                hit = dk[pos] == arr
                out[hit] = dv[pos[hit]]
        return out

    def set(self, ids: Ids, slots: np.ndarray) -> None:
        """Map ids to slots (replacing earlier mappings)."""
        if len(ids) > 4096 and len(ids) >= len(self.delta):
            self._merge(np.asarray(ids, np.int64), np.asarray(slots, np.int64))
        else:
            self.delta.update(zip(np.asarray(ids).tolist(), np.asarray(slots).tolist()))
            self._maybe_merge()

    def remove(self, ids: Ids) -> None:
        """Forget ids."""
        if len(ids) > 4096:
            self._merge(np.asarray(ids, np.int64), np.full(len(ids), -1, np.int64))
        else:
            self.delta.update(dict.fromkeys(np.asarray(ids).tolist(), -1))
            self._maybe_merge()

    def _maybe_merge(self) -> None:
        if len(self.delta) > max(4096, len(self.keys) // 16):
            self._merge(np.zeros(0, np.int64), np.zeros(0, np.int64))

    def _merge(self, ids: np.ndarray, slots: np.ndarray) -> None:
        """Fold the delta and (ids, slots) into the sorted base; -1 slots delete."""
        dk = np.fromiter(self.delta.keys(), np.int64, len(self.delta))
        dv = np.fromiter(self.delta.values(), np.int64, len(self.delta))
        keys = np.concatenate([self.keys, dk, ids])
        vals = np.concatenate([self.vals, dv, slots])
        # the last write per key wins: stable sort by key, keep each key's last entry
        order = np.argsort(keys, kind="stable")
        keys, vals = keys[order], vals[order]
        last = np.ones(len(keys), bool)
        last[:-1] = keys[1:] != keys[:-1]
        keep = last & (vals >= 0)
        self.keys, self.vals = keys[keep], vals[keep]
        self.delta = {}


class StrIdMap:
    """str id → slot in a dict."""

    def __init__(self) -> None:
        self.d: dict[str, int] = {}

    def get(self, ids: Ids) -> np.ndarray:
        """Slots of ids (-1 when absent)."""
        return np.fromiter((self.d.get(v, -1) for v in ids), np.int64, len(ids))

    def set(self, ids: Ids, slots: np.ndarray) -> None:
        """Map ids to slots."""
        self.d.update(zip(ids, np.asarray(slots).tolist()))

    def remove(self, ids: Ids) -> None:
        """Forget ids."""
        for v in ids:
            self.d.pop(v, None)
