"""The item table of an index: external id, liveness and attributes per slot (the backend's label)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roost.ann.idmap import IntIdMap, StrIdMap
from roost.errors import RoostError


def _kind_of(values: Sequence[Any] | np.ndarray) -> str:
    """'int' when every id is an integer, 'str' when every id is a string; else an error."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "iu":
        return "int"
    if arr is not None and arr.dtype.kind == "U":
        return "str"
    seq = list(values)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in seq):
        return "int"
    if all(isinstance(v, str) for v in seq):
        return "str"
    bad = next(
        (v for v in seq if not isinstance(v, (str, int, np.integer)) or isinstance(v, bool)),
        next((v for v in seq if isinstance(v, str) != isinstance(seq[0], str)), seq[0]),
    )
    raise RoostError(
        f"ids must be all integers or all strings, found {bad!r}",
        hint="use one id type per index (e.g. the item_id column)",
    )


MAX_ATTRIBUTES = 1024  # attribute columns per index
ATTR_PREFIX = "_attr_"  # items.parquet: attributes whose name starts with "_" (the table's own columns) get it


def _check_text(values: Sequence[str], what: str) -> None:
    """A RoostError naming the first string that is not valid Unicode (a lone surrogate: JSON and Parquet refuse it)."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        bad = next(v for v in values if not _encodable(v))
        raise RoostError(
            f"{what} {bad!r} is not valid UTF-8 text (it holds a lone surrogate)",
            hint="send text that encodes to UTF-8 (surrogates only as pairs)",
        ) from None


def _encodable(v: str) -> bool:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _column(values: Sequence[Any] | np.ndarray, name: str, like: np.ndarray | None = None) -> np.ndarray:
    """Attribute values as a numeric (int64/float64/bool) or object (text) array, checked against `like`."""
    try:
        arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    except ValueError:  # ragged nested lists
        arr = np.asarray(list(values) + [None], dtype=object)[:-1]
    if arr.ndim != 1 or arr.dtype.kind == "O" and any(isinstance(v, (list, tuple, dict, np.ndarray)) for v in arr):
        raise RoostError(
            f"attribute {name!r} holds lists or objects, not one value per item",
            hint="give each item one number, boolean or string per attribute",
        )
    if arr.dtype.kind == "M" or arr.dtype.kind == "m":
        arr = arr.astype(str).astype(object)
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    if arr.dtype.kind == "O":
        seq = arr.tolist()
        num = [v for v in seq if v is not None and not (isinstance(v, float) and v != v)]
        if num and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in num):
            arr = np.array([np.nan if v is None else v for v in seq], dtype=np.float64)
        elif num and all(isinstance(v, bool) for v in num):  # missing values: 1.0/0.0/NaN, as set_attributes does
            arr = (
                np.array(seq, dtype=bool)
                if len(num) == len(seq)
                else np.array([np.nan if v is None or v != v else float(v) for v in seq], dtype=np.float64)
            )
        elif all(isinstance(v, str) for v in num):
            _check_text(num, f"attribute {name!r}: value")
            arr = np.array([v if isinstance(v, str) else None for v in seq], dtype=object)
        else:
            bad = next(v for v in num if not isinstance(v, str))
            raise RoostError(
                f"attribute {name!r} mixes text and other values ({bad!r})",
                hint="give each attribute one type: numbers or strings",
            )
    if like is not None and (like.dtype.kind == "O") != (arr.dtype.kind == "O") and len(arr):
        want = "text" if like.dtype.kind == "O" else "numbers"
        raise RoostError(
            f"attribute {name!r} holds {want}, got {arr[:1].tolist()[0]!r}", hint=f"send {want} for {name}"
        )
    return arr


def _empty_like(arr: np.ndarray, n: int) -> np.ndarray:
    if arr.dtype.kind == "O":
        return np.full(n, None, dtype=object)
    if arr.dtype.kind == "b":
        return np.zeros(n, bool)
    return np.full(n, np.nan)


class Items:
    """Slots 0..n-1 with their external id, alive flag and attribute values; ids map back to slots."""

    def __init__(self) -> None:
        self.n = 0
        self.n_alive = 0
        self.id_kind: str | None = None
        self.ids: np.ndarray = np.zeros(0, np.int64)
        self.alive = np.zeros(0, bool)
        self.attrs: dict[str, np.ndarray] = {}
        self.slot_of: IntIdMap | StrIdMap = StrIdMap()

    def coerce(self, ids: Sequence[Any] | np.ndarray, lenient: bool = False) -> np.ndarray | list[str]:
        """Ids of the index's id type: an int64 array or a list of str (lenient: '42' is read as 42)."""
        if isinstance(ids, (str, int, np.integer)):
            ids = [ids]
        if len(ids) == 0:
            return np.zeros(0, np.int64) if self.id_kind == "int" else []
        if lenient and self.id_kind == "int":
            try:
                return np.array([int(v) for v in ids], np.int64)
            except (TypeError, ValueError, OverflowError):
                raise RoostError(f"index ids are integers, got {list(ids)[:3]!r}", hint="pass integer ids") from None
        kind = _kind_of(ids)
        if self.id_kind is not None and kind != self.id_kind:
            want = "integers" if self.id_kind == "int" else "strings"
            raise RoostError(f"index ids are {want}, got {list(ids)[:1][0]!r}", hint=f"send ids as {want}")
        if kind == "str":
            out = [str(v) for v in ids]
            _check_text(out, "id")
            return out
        big = "an id does not fit in 64 bits"
        if isinstance(ids, np.ndarray) and ids.dtype.kind == "u" and ids.size and int(ids.max()) > 2**63 - 1:
            raise RoostError(f"{big}: {int(ids.max())}", hint="use string ids for very large numbers")
        try:
            return np.asarray(ids, dtype=np.int64)
        except OverflowError:
            raise RoostError(big, hint="use string ids for very large numbers") from None

    def _grow(self, n: int) -> None:
        cap = len(self.alive)
        if n <= cap:
            return
        new = max(n, 2 * cap, 1024)
        ids = np.zeros(new, np.int64) if self.id_kind == "int" else np.full(new, None, dtype=object)
        ids[: self.n] = self.ids[: self.n]
        self.ids = ids
        self.alive = np.concatenate([self.alive, np.zeros(new - cap, bool)])
        self.attrs = {k: np.concatenate([v, _empty_like(v, new - len(v))]) for k, v in self.attrs.items()}

    def allocate(self, ids: np.ndarray | list[str]) -> tuple[np.ndarray, np.ndarray]:
        """New slots for `ids` (coerced) and the old slots they replace."""
        dups: np.ndarray | list[Any]
        if isinstance(ids, np.ndarray):
            uniq, counts = np.unique(ids, return_counts=True)
            dups = uniq[counts > 1]
        else:
            seen: set[Any] = set()
            dups = [v for v in ids if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
        if len(dups):
            first = dups[0].item() if isinstance(dups[0], np.generic) else dups[0]  # 7, not np.int64(7)
            raise RoostError(f"id {first!r} appears twice in one batch", hint="deduplicate the items first")
        if self.id_kind is None and len(ids):
            self.id_kind = _kind_of(ids)
            self.ids = (
                np.zeros(len(self.alive), np.int64)
                if self.id_kind == "int"
                else np.full(len(self.alive), None, dtype=object)
            )
            self.slot_of = IntIdMap() if self.id_kind == "int" else StrIdMap()
        old = self.slot_of.get(ids)
        old = old[old >= 0]
        self.kill(old)
        new = np.arange(self.n, self.n + len(ids), dtype=np.int64)
        self._grow(self.n + len(ids))
        self.ids[self.n : self.n + len(ids)] = ids
        self.alive[new] = True
        self.n += len(ids)
        self.n_alive += len(ids)
        self.slot_of.set(ids, new)
        return new, old

    def check_attributes(self, attributes: Mapping[str, Any] | None, n: int) -> dict[str, np.ndarray]:
        """Attribute columns for n new items, validated against the existing columns (nothing is changed)."""
        out: dict[str, np.ndarray] = {}
        new = [str(a) for a in (attributes or {}) if str(a) not in self.attrs]
        if len(self.attrs) + len(new) > MAX_ATTRIBUTES:  # each is a column over every slot: a memory bomb
            raise RoostError(
                f"{len(new)} new attribute(s) ({new[:3]}...) would give the index {len(self.attrs) + len(new)} "
                f"attributes; the limit is {MAX_ATTRIBUTES}",
                hint="keep only the attributes you filter or rank on (roost index build --attributes a,b)",
            )
        for name, values in (attributes or {}).items():
            if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
                raise RoostError(f"attribute {name!r} must be a list with one value per item")
            if len(values) != n:
                raise RoostError(
                    f"attribute {name!r} has {len(values)} values for {n} items", hint="send one value per item"
                )
            out[str(name)] = _column(values, str(name), self.attrs.get(str(name)))
        return out

    def set_attributes(self, slots: np.ndarray, cols: Mapping[str, np.ndarray]) -> None:
        """Attribute values of freshly allocated slots from checked columns (columns not given stay missing)."""
        for name, col in cols.items():
            cur = self.attrs.get(name)
            if cur is None:
                cur = _empty_like(col, len(self.alive))
            if cur.dtype.kind == "i" and col.dtype.kind != "i" or cur.dtype.kind == "b" and col.dtype.kind != "b":
                cur = cur.astype(np.float64)
            elif cur.dtype.kind == "f" and col.dtype.kind in "ib":
                col = col.astype(np.float64)
            cur[slots] = col
            self.attrs[name] = cur
        for name, cur in self.attrs.items():
            if name not in cols:
                if cur.dtype.kind in "ib":
                    cur = self.attrs[name] = cur.astype(np.float64)
                cur[slots] = None if cur.dtype.kind == "O" else np.nan

    def kill(self, slots: np.ndarray) -> None:
        """Mark slots dead and forget their ids."""
        slots = np.unique(slots[self.alive[slots]]) if len(slots) else slots
        if len(slots):
            gone = self.ids[slots]
            self.slot_of.remove(gone if self.id_kind == "int" else gone.tolist())
        self.alive[slots] = False
        self.n_alive -= len(slots)

    def lookup(self, ids: np.ndarray | list[str]) -> np.ndarray:
        """Slots of coerced ids (-1 where unknown or deleted)."""
        return self.slot_of.get(ids)

    def columns(self) -> dict[str, np.ndarray]:
        """Attribute columns over the used slots."""
        return {k: v[: self.n] for k, v in self.attrs.items()}

    def save(self, path: Path) -> None:
        """Write slots, ids, alive flags and attributes as Parquet."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = self.n
        cols = {
            "_slot": pa.array(np.arange(n, dtype=np.int64)),
            "_alive": pa.array(self.alive[:n]),
            "_id": pa.array(
                self.ids[:n].tolist() if self.id_kind != "int" else self.ids[:n],
                type=pa.string() if self.id_kind != "int" else pa.int64(),
            ),
        }
        for k, v in self.attrs.items():
            cols[ATTR_PREFIX + k if k.startswith("_") else k] = pa.array(
                v[:n].tolist() if v.dtype.kind == "O" else v[:n], type=pa.string() if v.dtype.kind == "O" else None
            )
        pq.write_table(pa.table(cols), path)

    def load(self, path: Path, id_kind: str | None) -> None:
        """Read what save wrote."""
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        self.id_kind = id_kind
        self.n = t.num_rows
        self.alive = t.column("_alive").to_numpy(zero_copy_only=False).astype(bool)
        raw = t.column("_id").to_numpy(zero_copy_only=False)
        self.ids = raw.astype(np.int64) if id_kind == "int" else raw.astype(object)
        self.attrs = {}
        for col in t.column_names:
            name = col[len(ATTR_PREFIX) :] if col.startswith(ATTR_PREFIX) else col
            if not col.startswith("_") or col != name:
                self.attrs[name] = _column(t.column(col).to_numpy(zero_copy_only=False), name)
        live = np.flatnonzero(self.alive)
        self.n_alive = len(live)
        self.slot_of = IntIdMap() if id_kind == "int" else StrIdMap()
        self.slot_of.set(self.ids[live] if id_kind == "int" else self.ids[live].tolist(), live)
