"""Served indexes: live upsert/delete with a journal, atomic swap to a new version, registry polling."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.ann.index import Index
from roost.errors import RoostError

log = logging.getLogger(__name__)
JOURNAL_MAX = 200_000


class IndexSlot:
    """One served index: searches read `slot.index`; mutations are journalled and replayed onto a swapped-in version."""

    def __init__(self, ref: str, index: Index | None = None, name: str | None = None, threads: int = 0) -> None:
        from roost.ann.repo import load_index, parse_ref

        self.ref = ref
        self.threads = threads
        self.index: Index = index if index is not None else load_index(ref, threads=threads)
        self.name = (
            name
            or self.index.meta.get("name")
            or (Path(ref).name if (Path(ref) / "index.json").is_file() else parse_ref(ref)[0])
        )
        self.pinned = (Path(ref) / "index.json").is_file() or ("/" in ref and "@" not in ref)
        self._mut = threading.Lock()
        self._journal: list[tuple[float, str, tuple[Any, ...]]] = []
        self.swaps = 0

    @property
    def version(self) -> int | None:
        """The served version (None for a folder)."""
        return self.index.meta.get("version")

    def info(self) -> dict[str, Any]:
        """What is served: index info plus name, ref and version."""
        return {
            **self.index.info(),
            "name": self.name,
            "ref": self.ref,
            "version": self.version,
            "journal": len(self._journal),
            "swaps": self.swaps,
        }

    def upsert(self, ids: Sequence[Any], vectors: Any, attributes: Mapping[str, Sequence[Any]] | None = None) -> int:
        """Insert or replace items in the served index."""
        with self._mut:
            n = self.index.upsert(ids, vectors, attributes)
            self._record("upsert", (list(ids), vectors, dict(attributes or {})))
        return n

    def delete(self, ids: Sequence[Any]) -> list[Any]:
        """Delete items from the served index; returns ids that were absent."""
        with self._mut:
            missing = self.index.delete(ids)
            self._record("delete", (list(ids),))
        return missing

    def _record(self, op: str, args: tuple[Any, ...]) -> None:
        self._journal.append((time.time(), op, args))
        if len(self._journal) > JOURNAL_MAX:
            del self._journal[: len(self._journal) - JOURNAL_MAX]
            log.warning("index %s: mutation journal full; oldest entries dropped", self.name)

    def swap(self, new: Index) -> Index:
        """Serve `new` from now on, after replaying mutations made since its snapshot; returns the old index."""
        if new.dim != self.index.dim:
            log.warning("index %s: dimension changes from %d to %d", self.name, self.index.dim, new.dim)
        with self._mut:
            since = float(new.meta.get("snapshot_time") or 0)
            keep = [e for e in self._journal if e[0] >= since]
            for _, op, args in keep:
                try:
                    new.upsert(*args) if op == "upsert" else new.delete(*args)
                except RoostError as exc:
                    log.warning("index %s: replaying %s failed: %s", self.name, op, exc)
            old, self.index = self.index, new
            self._journal = keep
            self.swaps += 1
        log.info(
            "index %s: now serving version %s (%d items, %d mutations replayed)",
            self.name,
            new.meta.get("version"),
            len(new),
            len(keep),
        )
        return old

    def reload(self, ref: str | None = None, force: bool = False) -> bool:
        """Load `ref` (default: the slot's ref, re-resolved) and swap it in when it is another version."""
        from roost.ann.repo import load_index, resolve

        target = ref or self.ref
        if not (Path(target) / "index.json").is_file():
            rec = resolve(target)
            if rec["version"] == self.version and not force:
                return False
            target = f"{rec['name']}/{rec['version']}"
        self.swap(load_index(target, threads=self.threads))
        return True


@dataclass
class AnnState:
    """Everything the ANN routes serve: index slots, recommenders, and the registry poller."""

    slots: dict[str, IndexSlot]
    recommenders: dict[str, Any] = field(default_factory=dict)
    poll_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AnnState:
        """Start polling the registry (when poll_s > 0) so new versions and moved aliases are swapped in."""
        if self.poll_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="roost-ann-poll", daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            for slot in list(self.slots.values()):
                if slot.pinned:
                    continue
                try:
                    slot.reload()
                except Exception as exc:  # noqa: BLE001 - keep serving the current version
                    log.warning("index %s: reload failed: %s", slot.name, exc)

    def close(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def open_indexes(
    refs: Sequence[str],
    recommend: Mapping[str, tuple[str, str | None]] | None = None,
    poll_s: float = 0.0,
    threads: int = 0,
    candidates: int = 100,
) -> AnnState:
    """Load indexes (name, name@alias, name/3, LABEL=ref, folder) and recommenders {index: (user model, ranker)}."""
    from roost.ann.recommend import Recommender

    slots: dict[str, IndexSlot] = {}
    for ref in refs:
        alias, _, target = ref.partition("=") if "=" in ref else ("", "", ref)
        slot = IndexSlot(target, name=alias or None, threads=threads)
        if slot.name in slots:
            raise RoostError(f"index {slot.name!r} given twice", hint="rename one: NAME=ref")
        slots[slot.name] = slot
    recs = {}
    for name, (user_model, ranker) in (recommend or {}).items():
        if name not in slots:
            raise RoostError(f"recommend: index {name!r} is not served", hint=f"served: {sorted(slots)}")
        recs[name] = Recommender(slots[name], user_model, ranker, candidates=candidates)
    return AnnState(slots, recs, poll_s).start()
