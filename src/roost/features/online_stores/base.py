"""The online store interface: atomic upserts of the latest row per entity, and prepared batched reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pyarrow as pa

MIN_I64 = -(2**63)


__all__ = ["MIN_I64", "ViewData", "ViewReader", "OnlineStore", "decode"]


@dataclass
class ViewData:
    """One view's rows to upsert: join keys, fields, __et/__ct (UTC microseconds, null = -infinity)."""

    name: str
    keys: dict[str, str]
    fields: dict[str, str]
    table: pa.Table
    expire_before: int | None = None

    def columns(self) -> list[list[Any]]:
        """Python value lists in order keys, fields, __et, __ct (timestamps as int microseconds)."""
        import numpy as np
        import pyarrow as pa

        out: list[list[Any]] = []
        for name in [*self.keys, *self.fields, "__et", "__ct"]:
            col = self.table.column(name)
            typ = col.type
            if pa.types.is_timestamp(typ):
                if col.null_count == len(col):  # e.g. no created times: no casts (two compute calls each)
                    out.append([None] * len(col))
                    continue
                if typ.unit != "us":  # (the zone does not change the stored instants)
                    col = col.cast(pa.timestamp("us", tz="UTC"))
                if col.null_count == 0:  # the int64 view of datetime64[us]: no compute cast (~3x faster)
                    out.append(np.asarray(col.to_numpy()).view(np.int64).tolist())
                    continue
                col = col.cast(pa.int64())
            elif col.null_count == 0 and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
                out.append(col.to_numpy().tolist())  # (NumPy's tolist: ~2x Arrow's to_pylist, the same values)
                continue
            out.append(col.to_pylist())
        return out


class ViewReader(ABC):
    """Reads the stored values of some fields of one view for a batch of entities."""

    @abstractmethod
    def read(self, key_cols: list[list[Any]]) -> list[list[Any]]:
        """Given one list per join key (rows aligned), return one list per field (None where absent)."""


class OnlineStore(ABC):
    """One row per entity per view: the values as of the last materialisation."""

    url: str
    per_project: ClassVar[bool] = False  # True: projects sharing one URL get separate stores (namespaced keys)

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, project: str) -> OnlineStore:
        """Open the store at `url` for workspace project `project` (see `online_stores.SCHEMES`)."""

    @abstractmethod
    def write(self, views: list[ViewData]) -> dict[str, int]:
        """Upsert rows whose (event, created) time is not older than the stored one, then drop rows with event
        time before `expire_before`; all views in one atomic step. Returns rows written per view."""

    @abstractmethod
    def reader(
        self,
        view: str,
        keys: dict[str, str],
        fields: dict[str, str],
        with_time: bool = False,
        with_created: bool = False,
    ) -> ViewReader:
        """A reader for `fields` of `view`, then its event time (`with_time`), then its created time (`with_created`).

        Times are UTC microseconds, None where the entity has no row or the source has no created time."""

    @abstractmethod
    def has_view(self, view: str) -> bool:
        """True when the view has been materialised into this store."""

    @abstractmethod
    def drop_view(self, view: str) -> None:
        """Forget every stored value of a view."""

    def stats(self, view: str) -> dict[str, Any] | None:
        """{'rows': entities stored, 'newest_event': newest event time in UTC microseconds or None} for a
        materialised view; None when the store cannot tell. May read the whole view: materialisation records it."""
        return None

    def sample(self, view: str, n: int) -> list[dict[str, Any]]:
        """Up to `n` stored rows of a view (join keys, fields, `__et` in UTC microseconds): a bounded read."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook: stores without connections keep this no-op
        """Release connections."""


def decode(value: Any, dtype: str) -> Any:
    """A stored value back as the Python value of its dtype (bool from 0/1; timestamps stay microseconds)."""
    if value is None:
        return None
    if dtype == "bool":
        return bool(int(value))
    if dtype in ("int64", "int32", "timestamp"):
        return int(value)
    if dtype in ("float64", "float32"):
        return float(value)
    return value if isinstance(value, str) else (value.decode() if isinstance(value, bytes) else str(value))
