"""Index: vectors under stable external ids, attribute filters, upsert/delete, exact fallback, save/load."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roost import artifacts
from roost.ann import brute, filters
from roost.ann.backends import KINDS, make_backend
from roost.ann.checks import as_matrix, check_ef, check_k, item_label
from roost.ann.items import Items
from roost.ann.locks import RWLock
from roost.errors import RoostError

log = logging.getLogger(__name__)
FORMAT = 1
_SQ_LIMIT = float(np.finfo(np.float32).max) / 4  # |q|² + |x|² + 2|q·x| must stay finite in float32
_REBUILD = "rebuild the index or load another version (delete a downloaded copy in .roost/cache/indexes to refetch)"
# what a damaged file makes the readers raise (pyarrow's errors derive from these)
_READ_ERRORS = (OSError, ValueError, RuntimeError, KeyError, IndexError, TypeError, EOFError, MemoryError)
DEFAULTS: dict[str, Any] = {
    "M": 16,
    "ef_construction": 200,
    "ef_search": 64,
    "nlist": 0,
    "nprobe": 8,
    "seed": 100,
    "ip_max_norm": 0.0,
    "target_recall": 0.95,  # recall@10 that tuning reaches and filtered searches keep
}


def _plain(keys: np.ndarray | list[Any]) -> list[Any]:
    """Coerced ids as a list of Python values."""
    return keys.tolist() if isinstance(keys, np.ndarray) else list(keys)


class Selection:
    """The slots a search may return (alive and matching a filter), in the forms each backend takes."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self.count = int(mask.sum())
        self._slots: np.ndarray | None = None
        self._callable: Any = None
        self._faiss: Any = None
        self.vectors: np.ndarray | None = None

    @property
    def slots(self) -> np.ndarray:
        """Allowed slot numbers, ascending."""
        if self._slots is None:
            self._slots = np.flatnonzero(self.mask)
        return self._slots

    def as_callable(self) -> Any:
        """label -> bool (hnswlib's filter)."""
        if self._callable is None:
            self._callable = self.mask.tolist().__getitem__
        return self._callable

    def as_faiss(self) -> Any:
        """A FAISS IDSelectorBitmap (kept alive with its bits)."""
        if self._faiss is None:
            import faiss

            bits = np.packbits(self.mask, bitorder="little")
            self._faiss = (bits, faiss.IDSelectorBitmap(len(self.mask), faiss.swig_ptr(bits)))
        return self._faiss[1]


@dataclass
class SearchResult:
    """Per query: external ids and scores, best first (higher score is closer)."""

    ids: list[np.ndarray]
    scores: list[np.ndarray]

    def to_list(self) -> list[list[dict[str, Any]]]:
        """JSON-ready: one list of {id, score} per query."""
        return [
            [{"id": i, "score": s} for i, s in zip(ids.tolist(), sc.tolist())] for ids, sc in zip(self.ids, self.scores)
        ]


class Index:
    """A vector index with external ids and attributes; thread-safe (searches share, mutations exclusive)."""

    def __init__(
        self,
        dim: int,
        metric: str = "cosine",
        kind: str = "hnsw",
        library: str | None = None,
        threads: int = 0,
        exact_limit: int = 20_000,
        **params: Any,
    ) -> None:
        if metric not in brute.METRICS:
            raise RoostError(f"unknown metric {metric!r}", hint="one of " + ", ".join(brute.METRICS))
        if kind not in KINDS:
            raise RoostError(f"unknown index kind {kind!r}", hint="one of " + ", ".join(KINDS))
        if int(dim) < 1:
            raise RoostError(f"dimension must be at least 1, got {dim}")
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise RoostError(f"unknown index parameter(s) {unknown}", hint="known: " + ", ".join(DEFAULTS))
        self.dim, self.metric, self.kind = int(dim), metric, kind
        self.params = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
        self.threads, self.exact_limit = threads, exact_limit
        # inner product on a graph: store [x, sqrt(R² - |x|²)] and search [q, 0] by L2 (same order as <q, x>)
        self.mips = metric == "ip" and kind == "hnsw"
        self.backend = make_backend(kind, library, self.dim + self.mips, "l2" if self.mips else metric, self.params)
        self.library = self.backend.library
        self.items = Items()
        self.meta: dict[str, Any] = {}
        self.generation = 0
        self._lock = RWLock()
        self._cache: OrderedDict[tuple[str, int], Selection] = OrderedDict()
        self._cache_lock = threading.Lock()

    def __len__(self) -> int:
        return self.items.n_alive

    @property
    def attribute_names(self) -> list[str]:
        """Names of the attributes items carry."""
        return list(self.items.attrs)

    def info(self) -> dict[str, Any]:
        """Size, shape and settings, JSON-ready."""
        return {
            "count": len(self),
            "dim": self.dim,
            "metric": self.metric,
            "kind": self.kind,
            "library": self.library,
            "params": dict(self.params),
            "id_type": self.items.id_kind,
            "attributes": self.attribute_names,
            "deleted_slots": self.items.n - self.items.n_alive,
            **{k: v for k, v in self.meta.items() if k in ("name", "version", "recall_at_10", "id_column")},
        }

    # -- mutations ---------------------------------------------------------------------------------------
    def _prepare(self, vectors: Any, names: Any = None) -> np.ndarray:
        """Validated float32 [n, dim] vectors, unit length for cosine; errors name the row (and its id in `names`)."""
        x = as_matrix(vectors, self.dim, what="vector", zero_ok=self.metric != "cosine", names=names)
        if self.metric != "cosine":
            if x.size and not float(np.einsum("ij,ij->", x, x)) < _SQ_LIMIT * len(x):  # rare: find the row
                sq = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
                i = int(np.flatnonzero(~(sq < _SQ_LIMIT))[0]) if (sq >= _SQ_LIMIT).any() else -1
                if i >= 0:
                    raise RoostError(
                        f"{item_label('vector', i, names)} is too large for {self.metric}: "
                        f"its squared length {sq[i]:.3g} overflows float32",
                        hint="scale the vectors down (lengths under about 9e18), or use --metric cosine",
                    )
            return x
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        if not (norms > 0).all() or not np.isfinite(norms).all():  # float32 under/overflow: norms in float64
            norms = np.sqrt(np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64)))
        return np.asarray(x / norms[:, None], np.float32)

    def _augment(self, x: np.ndarray) -> np.ndarray:
        """Items for the backend (MIPS: one extra coordinate that equalises norms)."""
        if not self.mips:
            return x
        sq = (x.astype(np.float64) ** 2).sum(1)
        r2 = float(self.params["ip_max_norm"]) ** 2
        if (sq > r2 * (1 + 1e-6)).any():
            log.warning(
                "inner-product index: %d vector(s) longer than the build's largest (%.4g); their scores "
                "are approximate until the index is rebuilt",
                int((sq > r2).sum()),
                r2**0.5,
            )
        extra = np.sqrt(np.maximum(r2 - sq, 0.0)).astype(np.float32)
        return np.hstack([x, extra[:, None]])

    def _bound_norm(self, x: np.ndarray) -> None:
        """MIPS: the first batch fixes the norm bound; a longer vector later rebuilds the graph under a larger one."""
        top = float(np.sqrt((x.astype(np.float64) ** 2).sum(1).max()))
        bound = float(self.params["ip_max_norm"])
        if not bound:
            self.params["ip_max_norm"] = top
            return
        if top <= bound * (1 + 1e-6):
            return
        n = self.items.n
        slots = np.flatnonzero(self.items.alive[:n]) if self.backend.native_delete else np.arange(n)
        vecs = self._stored(slots)  # before the bound changes: faiss needs every position, hnswlib only live ones
        self.params["ip_max_norm"] = top * 1.25  # headroom, so norms that keep growing rebuild rarely
        log.info("inner-product index: a vector of norm %.4g exceeds the bound %.4g; rebuilding %d", top, bound, n)
        self.backend = make_backend(self.kind, self.library, self.dim + 1, "l2", self.params, max(n, 1024))
        if len(slots):
            self.backend.add(slots, self._augment(vecs), self.threads)

    def _stored(self, slots: np.ndarray) -> np.ndarray:
        """Stored vectors of slots, as the user sees them (normalised for cosine)."""
        v = self.backend.vectors(slots)
        return v[:, : self.dim] if self.mips else v

    def upsert(
        self,
        ids: Sequence[Any] | np.ndarray,
        vectors: Any,
        attributes: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
        chunk: int = 0,
    ) -> int:
        """Insert items or replace them (vector and attributes) by id; returns how many were written."""
        x = self._prepare(vectors, names=ids)
        keys = self.items.coerce(ids)
        if len(keys) != len(x):
            raise RoostError(f"{len(keys)} ids for {len(x)} vectors", hint="send one id per vector")
        if not len(keys):
            return 0
        with self._lock.write():
            cols = self.items.check_attributes(attributes, len(keys))  # refuse bad input before changing anything
            if self.mips:
                self._bound_norm(x)
            new, old = self.items.allocate(keys)
            self.items.set_attributes(new, cols)
            if len(old) and self.backend.native_delete:
                self.backend.remove(old)
            step = chunk or len(new)
            for i in range(0, len(new), step):
                self.backend.add(new[i : i + step], self._augment(x[i : i + step]), self.threads)
            self._mutated()
        return len(keys)

    def delete(self, ids: Sequence[Any] | np.ndarray) -> list[Any]:
        """Remove items by id; returns the ids that were not in the index."""
        keys = self.items.coerce(ids)
        with self._lock.write():
            slots = self.items.lookup(keys)
            found = np.unique(slots[slots >= 0])  # an id listed twice is one item (killed twice it was counted twice)
            self.items.kill(found)
            if len(found) and self.backend.native_delete:
                self.backend.remove(found)
            self._mutated()
        return [k for k, s in zip(_plain(keys), slots.tolist()) if s < 0]

    def _mutated(self) -> None:
        self.generation += 1
        with self._cache_lock:
            self._cache.clear()

    # -- search ------------------------------------------------------------------------------------------
    def _selection(self, flt: Mapping[str, Any] | None) -> Selection | None:
        """Allowed slots for a filter (None: all alive slots, when the backend hides dead ones itself)."""
        if not flt and (self.backend.native_delete or self.items.n_alive == self.items.n):
            return None
        # numpy scalars as Python values first: str() made np.int64(5) and "5" one key (a cached wrong mask)
        key = (json.dumps(filters.plain(flt), sort_keys=True, default=repr) if flt else "", self.generation)
        with self._cache_lock:
            sel = self._cache.get(key)
            if sel is not None:
                self._cache.move_to_end(key)
                return sel
        n = self.items.n
        mask = filters.evaluate(flt, self.items.columns(), n)
        alive = self.items.alive[:n]
        sel = Selection(alive.copy() if mask is None else (mask & alive))
        with self._cache_lock:
            self._cache[key] = sel
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return sel

    def _exact(self, q: np.ndarray, k: int, sel: Selection | None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the allowed slots (or all alive ones)."""
        slots = sel.slots if sel is not None else np.flatnonzero(self.items.alive[: self.items.n])
        vecs = sel.vectors if sel is not None else None
        if vecs is None:
            vecs = self._stored(slots)
            if sel is not None:
                sel.vectors = vecs
        idx, val = brute.search(vecs, q, k, "l2" if self.metric == "l2" else "ip")
        return slots[idx], val

    def search(
        self,
        queries: Any,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        ef: int | None = None,
        exclude: Sequence[Any] | None = None,
    ) -> SearchResult:
        """The k nearest items to each query vector that match `filter` (fewer when fewer exist)."""
        k, ef = check_k(k), check_ef(ef)
        q = self._prepare(queries)
        if exclude is not None and (isinstance(exclude, (str, bytes, Mapping)) or not hasattr(exclude, "__len__")):
            raise RoostError(f"exclude must be a list of ids, got {exclude!r}", hint='e.g. "exclude": [12, 40]')
        if exclude is not None:  # a numpy array ('truth value ... ambiguous'), a set or a tuple: a plain list
            exclude = exclude.tolist() if isinstance(exclude, np.ndarray) else list(exclude)
        with self._lock.read():
            return self._search(q, k, filter, ef, exclude)

    def _search(
        self, q: np.ndarray, k: int, flt: Mapping[str, Any] | None, ef: int | None, exclude: Sequence[Any] | None
    ) -> SearchResult:
        if self.items.n_alive == 0 or len(q) == 0:
            return SearchResult([np.zeros(0, self.items.ids.dtype)] * len(q), [np.zeros(0, np.float32)] * len(q))
        sel = self._selection(flt)
        ex = self.items.lookup(self.items.coerce(exclude)) if exclude else np.zeros(0, np.int64)
        ex = ex[ex >= 0]
        allowed = self.items.n_alive if sel is None else sel.count
        kk = min(k + len(ex), allowed)
        if kk == 0:
            return SearchResult([np.zeros(0, self.items.ids.dtype)] * len(q), [np.zeros(0, np.float32)] * len(q))
        knob = int(ef or self.params.get(self.backend.knob, 0) or 0)
        plan = self._plan(kk, knob, sel)
        if plan is None:
            labels, sc = self._exact(q, kk, sel)
            return self._finish(labels, sc, k, ex, sel)
        try:
            labels, sc = self._backend_search(q, *plan)
        except RuntimeError:  # hnswlib: fewer than k reachable in the graph
            labels, sc = self._exact(q, kk, sel)
            return self._finish(labels, sc, k, ex, sel)
        # a graph or list search that came back short (selective filter, deletes): exact for those rows
        ok = self._valid(labels, ex, sel)
        short = ok.sum(1) < min(k, allowed - len(ex))
        if short.any():
            labels, sc = labels.copy(), sc.copy()
            exact_l, exact_s = self._exact(q[short], kk, sel)
            width = min(labels.shape[1], exact_l.shape[1])
            labels[short], sc[short] = -1, -np.inf
            labels[short, :width], sc[short, :width] = exact_l[:, :width], exact_s[:, :width]
            return self._finish(labels, sc, k, ex, sel)
        return self._finish(labels, sc, k, ex, sel, ok)

    def _plan(self, kk: int, knob: int, sel: Selection | None) -> tuple[int, int, Selection | None] | None:
        """How to serve a search: (k, effort, selection) for the backend, or None for the exact search.

        The tuned effort reaches the target recall for the top k of the whole index. A filter that keeps a
        fraction s of the items asks for neighbours that rank up to k/s in the unfiltered order, so the effort is
        scaled by 1/s: an unfiltered search that keeps `knob` matching candidates (as a filtered graph search with
        effort `knob` would) and is then filtered here. When that search would compute more distances than a
        brute-force pass over the matching items, the exact search is cheaper and is used instead.
        """
        if sel is None:
            return kk, knob, None
        if sel.count <= self.exact_limit or self.kind == "flat":
            return None
        graph = self.items.n_alive if self.backend.native_delete else self.items.n  # what the backend searches
        s = sel.count / max(graph, 1)
        if self.kind == "ivf":
            nlist = int(self.params.get("nlist") or 1)
            probe = min(nlist, int(np.ceil(max(knob, 1) / s)))
            if probe * graph / nlist > sel.count:  # scanning the lists costs more than the matching items
                return None
            return kk, probe, sel
        fetch = int(np.ceil((kk + 3 * np.sqrt(kk) + 3) / s))  # covers the k-th match's unfiltered rank
        effort = max(int(np.ceil(max(knob, kk) / s)), fetch)
        if effort > sel.count or fetch > graph:  # the graph would visit more items than there are matches
            return None
        return fetch, effort, None

    def _backend_search(self, q: np.ndarray, k: int, knob: int, sel: Selection | None) -> tuple[np.ndarray, np.ndarray]:
        if not self.mips:
            return self.backend.search(q, k, knob, sel, self.threads)
        labels, neg_d = self.backend.search(
            np.hstack([q, np.zeros((len(q), 1), np.float32)]), k, knob, sel, self.threads
        )
        qn = (q.astype(np.float64) ** 2).sum(1, keepdims=True)
        return labels, ((qn + float(self.params["ip_max_norm"]) ** 2 + neg_d) / 2).astype(np.float32)

    def _valid(self, labels: np.ndarray, ex: np.ndarray, sel: Selection | None) -> np.ndarray:
        """Which result slots are real, alive, allowed and not excluded."""
        if sel is None and not len(ex) and labels.size and labels.min() >= 0:
            return np.asarray(
                self.items.alive[labels], bool
            )  # slots < n always: the backends only know allocated slots
        ok = (labels >= 0) & (labels < self.items.n)
        safe = np.where(ok, labels, 0)
        ok &= self.items.alive[safe] if sel is None else sel.mask[safe]
        if len(ex):
            ok &= ~np.isin(safe, ex)
        return ok

    def _finish(
        self,
        labels: np.ndarray,
        sc: np.ndarray,
        k: int,
        ex: np.ndarray,
        sel: Selection | None,
        ok: np.ndarray | None = None,
    ) -> SearchResult:
        """Map slots to ids, dropping empty, dead, excluded and (defensively) non-matching slots."""
        if ok is None:
            ok = self._valid(labels, ex, sel)
        full = bool(ok.all())
        ids_all = self.items.ids[labels if full else np.where(ok, labels, 0)]
        if full and labels.shape[1] == k:
            return SearchResult(list(ids_all), list(sc.astype(np.float32, copy=False)))
        ids, scores = [], []
        for row_ok, row_ids, row_sc in zip(ok, ids_all, sc):
            ids.append(row_ids[row_ok][:k])
            scores.append(row_sc[row_ok][:k].astype(np.float32, copy=False))
        return SearchResult(ids, scores)

    def search_ids(
        self,
        ids: Sequence[Any],
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        ef: int | None = None,
        lenient: bool = False,
    ) -> SearchResult:
        """The k nearest other items to each stored item (the item itself left out)."""
        k, ef = check_k(k), check_ef(ef)
        with self._lock.read():
            keys = self.items.coerce(ids, lenient=lenient)
            slots = self.items.lookup(keys)
            if (slots < 0).any():
                from roost.errors import NotFoundError

                missing = [key for key, s in zip(_plain(keys), slots.tolist()) if s < 0]
                raise NotFoundError(f"id(s) {missing[:5]} not in the index", hint="query by vector instead")
            q = self._stored(slots)
            out = [self._search(q[i : i + 1], k, filter, ef, [key]) for i, key in enumerate(_plain(keys))]
        return SearchResult([r.ids[0] for r in out], [r.scores[0] for r in out])

    def get(self, ids: Sequence[Any]) -> dict[str, Any]:
        """Stored vectors (normalised for cosine) and attributes of items, by id (missing ids: NotFoundError)."""
        with self._lock.read():
            keys = self.items.coerce(ids)
            slots = self.items.lookup(keys)
            if (slots < 0).any():
                from roost.errors import NotFoundError

                raise NotFoundError(f"id(s) {[k for k, s in zip(_plain(keys), slots) if s < 0][:5]} not in the index")
            return {
                "ids": _plain(keys),
                "vectors": self._stored(slots),
                "attributes": {n: c[slots] for n, c in self.items.attrs.items()},
            }

    def attributes_of(self, ids: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Attribute columns for ids of search results (an id deleted since then: missing values)."""
        with self._lock.read():
            slots = self.items.lookup(list(ids.tolist()))
            gone = slots < 0
            out = {}
            for n in names:
                vals = self.items.attrs[n][np.maximum(slots, 0)]  # slot 0 stands in for a gone id: blanked below
                if gone.any():
                    vals = vals.astype(np.float64) if vals.dtype.kind in "biu" else vals
                    vals[gone] = None if vals.dtype.kind == "O" else np.nan
                out[n] = vals
            return out

    # -- persistence -------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write index.json, items.parquet and the backend's file into `directory`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with self._lock.read():
            vec_file = self.backend.save(d)
            self.items.save(d / "items.parquet")
            doc = {
                "format": FORMAT,
                "dim": self.dim,
                "metric": self.metric,
                "kind": self.kind,
                "library": self.library,
                "params": self.params,
                "id_type": self.items.id_kind,
                "count": len(self),
                "slots": self.items.n,
                "vectors_file": vec_file,
                "files": {f: _fingerprint(d / f) for f in (vec_file, "items.parquet") if f},
                "saved_at": time.time(),
                "meta": self.meta,
            }
        (d / "index.json").write_text(json.dumps(doc, indent=2, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path, threads: int = 0) -> Index:
        """Read an index written by save; a damaged, truncated, missing or swapped file is a RoostError naming it."""
        d = Path(directory)
        f = d / "index.json"
        if not f.is_file():
            raise RoostError(f"{d} is not a roost index", hint="it must contain index.json")
        doc = _read_doc(f)
        idx = cls(
            doc["dim"],
            doc["metric"],
            doc["kind"],
            doc["library"],
            threads=threads,
            **{k: v for k, v in doc["params"].items() if k in DEFAULTS},
        )
        idx.params.update(doc["params"])
        vec_file = doc.get("vectors_file") or ""
        files = doc.get("files")
        if isinstance(files, dict):  # saved with fingerprints: check every file before a reader sees it
            for name, want in files.items():
                _check_file(d / str(name), want)
        for name in (vec_file, "items.parquet"):
            if name and not (d / name).is_file():
                raise RoostError(f"{d / name} is missing", hint=_REBUILD)
        try:
            idx.items.load(d / "items.parquet", doc["id_type"])
        except _READ_ERRORS as exc:
            raise RoostError(f"{d / 'items.parquet'} is damaged: {str(exc)[:200]}", hint=_REBUILD) from None
        if idx.items.n != doc.get("slots", idx.items.n) or idx.items.n_alive != doc.get("count", idx.items.n_alive):
            raise RoostError(
                f"{d / 'items.parquet'} holds {idx.items.n} items ({idx.items.n_alive} live), index.json says "
                f"{doc.get('slots')} ({doc.get('count')} live): the file belongs to another index",
                hint=_REBUILD,
            )
        where = d / vec_file if vec_file else d
        try:
            idx.backend.load(d, max(idx.items.n, 16))
            stored = idx.backend.size()
        except _READ_ERRORS as exc:
            raise RoostError(f"{where} is damaged: {str(exc)[:200]}", hint=_REBUILD) from None
        if not idx._size_fits(stored):
            raise RoostError(
                f"{where} holds {stored} vectors, items.parquet {idx.items.n} slots ({idx.items.n_alive} live): "
                "the files belong to different indexes",
                hint=_REBUILD,
            )
        idx.meta = doc.get("meta") or {}
        return idx

    def _size_fits(self, stored: int) -> bool:
        """Whether a backend holding `stored` vectors can belong to this item table."""
        n, alive = self.items.n, self.items.n_alive
        if self.backend.library == "hnswlib":  # deleted slots are reused by later inserts: between live and all
            return alive <= stored <= n
        if self.backend.native_delete:  # faiss IVF removes deleted vectors
            return stored == alive
        return stored == n  # positions: one per slot, dead ones included


def _fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of a file."""
    return {"bytes": path.stat().st_size, "sha256": artifacts.file_sha256(path)}


def _check_file(path: Path, want: Any) -> None:
    """A RoostError naming `path` when it is missing or differs from the fingerprint save wrote."""
    if not path.is_file():
        raise RoostError(f"{path} is missing", hint=_REBUILD)
    if not isinstance(want, dict):
        raise RoostError(f"{path.parent / 'index.json'} is damaged: bad entry for {path.name}", hint=_REBUILD)
    size = path.stat().st_size
    if size != want.get("bytes"):
        raise RoostError(
            f"{path} is truncated or was replaced: {size} bytes, index.json says {want.get('bytes')}", hint=_REBUILD
        )
    if _fingerprint(path)["sha256"] != want.get("sha256"):
        raise RoostError(f"{path} is damaged: its checksum differs from the one index.json records", hint=_REBUILD)


def _read_doc(f: Path) -> dict[str, Any]:
    """index.json, with its fields checked."""
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RoostError(f"{f} is damaged: {str(exc)[:200]}", hint=_REBUILD) from None
    if not isinstance(doc, dict):
        raise RoostError(f"{f} is damaged: not a JSON object", hint=_REBUILD)
    if doc.get("format") != FORMAT:
        raise RoostError(f"index format {doc.get('format')} in {f} is not supported", hint="rebuild the index")
    checks: dict[str, Any] = {
        "dim": lambda v: type(v) is int and v >= 1,
        "metric": lambda v: v in brute.METRICS,
        "kind": lambda v: v in KINDS,
        "library": lambda v: v is None or isinstance(v, str),
        "params": lambda v: isinstance(v, dict),
        "id_type": lambda v: v in ("int", "str", None),
    }
    for key, ok in checks.items():
        if key not in doc or not ok(doc[key]):
            raise RoostError(f"{f} is damaged: field {key!r} is {doc.get(key, 'missing')!r}", hint=_REBUILD)
    return doc


__all__ = ["Index", "SearchResult", "Selection", "RWLock", "DEFAULTS", "time"]
