"""Vector backends under an Index: hnswlib (HNSW), FAISS (HNSW, IVF, flat) and numpy (flat); labels = index slots.

Every backend implements the `Backend` protocol; `BACKENDS` maps (kind, library) to the class that serves it, so
adding one is a class here and a line in the table.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from roost.errors import RoostError

__all__ = [
    "BACKENDS",
    "DEFAULT_LIBRARY",
    "KINDS",
    "LIBRARIES",
    "Allowed",
    "Backend",
    "BruteBackend",
    "FaissBackend",
    "HnswlibBackend",
    "make_backend",
]

KINDS = ("hnsw", "ivf", "flat")
LIBRARIES = ("hnswlib", "faiss", "numpy")
DEFAULT_LIBRARY = {"hnsw": "hnswlib", "ivf": "faiss", "flat": "faiss"}
BACKENDS: dict[tuple[str, str], str] = {  # (kind, library) -> "module:Class"
    ("hnsw", "hnswlib"): "roost.ann.backends:HnswlibBackend",
    ("hnsw", "faiss"): "roost.ann.backends:FaissBackend",
    ("ivf", "faiss"): "roost.ann.backends:FaissBackend",
    ("flat", "faiss"): "roost.ann.backends:FaissBackend",
    ("flat", "numpy"): "roost.ann.backends:BruteBackend",
}


class Allowed(Protocol):
    """The slots a search may return, in the forms the backends take (roost.ann.index.Selection)."""

    mask: np.ndarray

    def as_callable(self) -> Any:
        """label -> bool."""
        ...

    def as_faiss(self) -> Any:
        """A FAISS IDSelector."""
        ...


class Backend(Protocol):
    """What an Index needs of a vector library: labelled vectors in, top-k labels and scores out."""

    library: str
    kind: str
    native_delete: bool  # True: remove() hides labels itself; False: the Index passes the alive ones as `Allowed`
    knob: str  # the search-effort parameter ("ef_search", "nprobe", "" for exact)

    def add(self, labels: np.ndarray, vecs: np.ndarray, threads: int = 0) -> None:
        """Insert vectors under new labels."""
        ...

    def remove(self, labels: np.ndarray) -> None:
        """Forget labels (or nothing, when native_delete is False)."""
        ...

    def search(
        self, q: np.ndarray, k: int, knob: int, selection: Allowed | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels (-1 when missing) and scores (higher is closer) per query."""
        ...

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of labels."""
        ...

    def save(self, directory: Path) -> str:
        """Write the backend's file into `directory`; returns its name ("" when nothing was written)."""
        ...

    def load(self, directory: Path, capacity: int) -> None:
        """Read what save wrote."""
        ...

    def size(self) -> int:
        """How many vectors the library holds (deleted ones it still keeps included)."""
        ...

    def tune_values(self, k: int) -> list[int]:
        """Effort values tried when tuning for a target recall, smallest first."""
        ...


def _threads(n_queries: int, threads: int) -> int:
    """Threads for a batch: `threads` when set, else all cores for large batches and one for small ones."""
    if threads > 0:
        return threads
    return 1 if n_queries < 32 else (os.cpu_count() or 1)


def _import(lib: str) -> Any:
    try:
        return __import__(lib)
    except ImportError:
        pkg = {"faiss": "faiss-cpu", "hnswlib": "hnswlib"}[lib]
        raise RoostError(f"the {lib} library is not installed", hint=f"pip install {pkg}") from None


class HnswlibBackend:
    """HNSW graph from hnswlib; deletes are native (marked, slots reused by later inserts)."""

    library, kind, native_delete, knob = "hnswlib", "hnsw", True, "ef_search"

    def __init__(self, dim: int, metric: str, params: dict[str, Any], kind: str = "hnsw", capacity: int = 1024) -> None:
        hnswlib = _import("hnswlib")
        self.dim, self.metric, self.params = dim, metric, params
        self.index = hnswlib.Index(space="l2" if metric == "l2" else "ip", dim=dim)
        self.capacity = 0
        self._ready = False
        self._init_capacity = max(int(capacity), 16)

    def _init(self) -> None:
        self.index.init_index(
            max_elements=self._init_capacity,
            M=int(self.params["M"]),
            ef_construction=int(self.params["ef_construction"]),
            random_seed=int(self.params.get("seed", 100)),
            allow_replace_deleted=True,
        )
        self.capacity = self._init_capacity
        self._ready = True

    def add(self, labels: np.ndarray, vecs: np.ndarray, threads: int = 0) -> None:
        """Insert vectors under new labels."""
        if not self._ready:
            self._init()
        need = self.index.get_current_count() + len(labels)
        if need > self.capacity:
            self.capacity = max(need, 2 * self.capacity)
            self.index.resize_index(self.capacity)
        self.index.add_items(vecs, labels, num_threads=_threads(len(labels), threads), replace_deleted=True)

    def remove(self, labels: np.ndarray) -> None:
        """Mark labels deleted: they never appear in results again."""
        for lb in labels.tolist():
            self.index.mark_deleted(lb)

    def search(
        self, q: np.ndarray, k: int, knob: int, selection: Allowed | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels and scores (higher is closer); raises RuntimeError when fewer than k are reachable."""
        self.index.set_ef(max(int(knob), k))
        flt = None if selection is None else selection.as_callable()
        n_threads = 1 if flt is not None else _threads(len(q), threads)
        labels, dist = self.index.knn_query(q, k=k, num_threads=n_threads, filter=flt)
        return labels.astype(np.int64, copy=False), (-dist if self.metric == "l2" else 1.0 - dist)

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of labels."""
        if len(labels) == 0:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.index.get_items(labels, return_type="numpy"), np.float32)

    def save(self, directory: Path) -> str:
        """Write the graph; returns the file name."""
        if not self._ready:
            self._init()
        self.index.save_index(str(directory / "vectors.hnswlib"))
        return "vectors.hnswlib"

    def load(self, directory: Path, capacity: int) -> None:
        """Read the graph written by save."""
        self.capacity = max(capacity, 16)
        self.index.load_index(
            str(directory / "vectors.hnswlib"), max_elements=self.capacity, allow_replace_deleted=True
        )
        self._ready = True

    def size(self) -> int:
        """Elements in the graph (marked-deleted ones included)."""
        return int(self.index.get_current_count()) if self._ready else 0

    def tune_values(self, k: int) -> list[int]:
        """ef_search values tried when tuning for a target recall."""
        return [v for v in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048) if v >= k]


class FaissBackend:
    """FAISS IndexHNSWFlat / IndexIVFFlat / IndexFlat; HNSW and flat mark deletes, IVF removes natively."""

    library = "faiss"

    def __init__(self, dim: int, metric: str, params: dict[str, Any], kind: str, capacity: int = 1024) -> None:
        self.faiss = _import("faiss")
        self.dim, self.metric, self.params, self.kind = dim, metric, params, kind
        self.native_delete = kind == "ivf"
        self.knob = {"hnsw": "ef_search", "ivf": "nprobe", "flat": ""}[kind]
        self.ftype = self.faiss.METRIC_L2 if metric == "l2" else self.faiss.METRIC_INNER_PRODUCT
        self.index: Any = None
        if kind == "hnsw":
            self.index = self.faiss.IndexHNSWFlat(dim, int(params["M"]), self.ftype)
            self.index.hnsw.efConstruction = int(params["ef_construction"])
        elif kind == "flat":
            self.index = self.faiss.IndexFlat(dim, self.ftype)

    def _make_ivf(self, train: np.ndarray) -> None:
        faiss = self.faiss
        nlist = int(self.params.get("nlist") or 0) or int(round(4 * np.sqrt(len(train))))
        nlist = max(1, min(nlist, len(train) // 39 or 1))
        self.params["nlist"] = nlist
        self.quantizer = faiss.IndexFlat(self.dim, self.ftype)
        self.index = faiss.IndexIVFFlat(self.quantizer, self.dim, nlist, self.ftype)
        self.index.train(train)
        self.index.set_direct_map_type(faiss.DirectMap.Hashtable)

    def _set_threads(self, n: int) -> None:
        if self.faiss.omp_get_max_threads() != n:
            self.faiss.omp_set_num_threads(n)

    def add(self, labels: np.ndarray, vecs: np.ndarray, threads: int = 0) -> None:
        """Insert vectors under new labels (HNSW/flat: labels must be the next positions)."""
        self._set_threads(_threads(len(labels), threads))
        if self.kind == "ivf":
            if self.index is None:
                self._make_ivf(vecs)
            self.index.add_with_ids(vecs, labels.astype(np.int64))
            return
        if len(labels) and (labels[0] != self.index.ntotal or labels[-1] != self.index.ntotal + len(labels) - 1):
            raise RuntimeError("faiss labels must be consecutive positions")
        self.index.add(vecs)

    def remove(self, labels: np.ndarray) -> None:
        """IVF: remove natively; HNSW/flat: nothing (the index excludes dead labels by selection)."""
        if self.kind == "ivf" and self.index is not None:
            arr = np.ascontiguousarray(labels, dtype=np.int64)
            self.index.remove_ids(self.faiss.IDSelectorArray(len(arr), self.faiss.swig_ptr(arr)))

    def search(
        self, q: np.ndarray, k: int, knob: int, selection: Allowed | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels (-1 when missing) and scores (higher is closer)."""
        faiss = self.faiss
        if self.index is None:
            return np.full((len(q), k), -1, np.int64), np.full((len(q), k), -np.inf, np.float32)
        self._set_threads(_threads(len(q), threads))
        params: Any = None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(int(knob), k)
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = max(1, min(int(knob), int(self.params["nlist"])))
        elif selection is not None:
            params = faiss.SearchParameters()
        if selection is not None:
            params.sel = selection.as_faiss()
        dist, labels = self.index.search(q, k, params=params)
        return labels, (-dist if self.metric == "l2" else dist)

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of labels."""
        if len(labels) == 0 or self.index is None:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.index.reconstruct_batch(labels.astype(np.int64)), np.float32)

    def save(self, directory: Path) -> str:
        """Write the index; returns the file name."""
        if self.index is None:
            return ""
        self.faiss.write_index(self.index, str(directory / "vectors.faiss"))
        return "vectors.faiss"

    def load(self, directory: Path, capacity: int) -> None:
        """Read the index written by save."""
        f = directory / "vectors.faiss"
        if f.is_file():
            self.index = self.faiss.read_index(str(f))
            if self.index.d != self.dim:
                raise ValueError(f"it holds {self.index.d}-dimensional vectors, not {self.dim}")
            if self.kind == "ivf":
                self.index.set_direct_map_type(self.faiss.DirectMap.Hashtable)

    def size(self) -> int:
        """Vectors in the index (HNSW/flat: every position, dead ones included)."""
        return 0 if self.index is None else int(self.index.ntotal)

    def tune_values(self, k: int) -> list[int]:
        """ef_search (HNSW) or nprobe (IVF) values tried when tuning for a target recall."""
        if self.kind == "hnsw":
            return [v for v in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048) if v >= k]
        if self.kind == "ivf":
            nlist = int(self.params.get("nlist") or 1)
            return sorted({min(v, nlist) for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512)})
        return [0]


class BruteBackend:
    """Exact search over a numpy array (kind `flat`, library `numpy`): no index library needed."""

    library, kind, native_delete, knob = "numpy", "flat", False, ""

    def __init__(self, dim: int, metric: str, params: dict[str, Any], kind: str = "flat", capacity: int = 1024) -> None:
        self.dim, self.metric, self.params = dim, metric, params
        self.x = np.zeros((max(int(capacity), 16), dim), np.float32)
        self.n = 0

    def add(self, labels: np.ndarray, vecs: np.ndarray, threads: int = 0) -> None:
        """Store vectors at their labels (slots), growing the array as needed."""
        if not len(labels):
            return
        top = int(labels.max()) + 1
        if top > len(self.x):
            grown = np.zeros((max(top, 2 * len(self.x)), self.dim), np.float32)
            grown[: self.n] = self.x[: self.n]
            self.x = grown
        self.x[labels] = vecs
        self.n = max(self.n, top)

    def remove(self, labels: np.ndarray) -> None:
        """Nothing: the index excludes dead labels by selection."""

    def search(
        self, q: np.ndarray, k: int, knob: int, selection: Allowed | None = None, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k labels (-1 when fewer exist) and scores (higher is closer)."""
        from roost.ann import brute

        slots = np.arange(self.n) if selection is None else np.flatnonzero(selection.mask[: self.n])
        idx, val = brute.search(self.x[slots], q, k, "l2" if self.metric == "l2" else "ip")
        labels = np.full((len(q), k), -1, np.int64)
        scores = np.full((len(q), k), -np.inf, np.float32)
        labels[:, : idx.shape[1]], scores[:, : idx.shape[1]] = slots[idx], val
        return labels, scores

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of labels."""
        return self.x[labels.astype(np.int64)].copy()

    def save(self, directory: Path) -> str:
        """Write the vectors as vectors.npy."""
        np.save(directory / "vectors.npy", self.x[: self.n])
        return "vectors.npy"

    def load(self, directory: Path, capacity: int) -> None:
        """Read vectors.npy."""
        f = directory / "vectors.npy"
        if f.is_file():
            x = np.load(f)
            self.n = len(x)
            self.x = np.zeros((max(capacity, self.n, 16), self.dim), np.float32)
            self.x[: self.n] = x

    def size(self) -> int:
        """Stored rows (one per slot)."""
        return self.n

    def tune_values(self, k: int) -> list[int]:
        """Exact: nothing to tune."""
        return [0]


def make_backend(
    kind: str, library: str | None, dim: int, metric: str, params: dict[str, Any], capacity: int = 1024
) -> Backend:
    """The backend for an index kind and library (None: the measured default for the kind)."""
    if kind not in KINDS:
        raise RoostError(f"unknown index kind {kind!r}", hint="one of " + ", ".join(KINDS))
    lib = library or DEFAULT_LIBRARY[kind]
    if lib not in LIBRARIES:
        raise RoostError(f"unknown ANN library {lib!r}", hint="one of " + ", ".join(LIBRARIES))
    target = BACKENDS.get((kind, lib))
    if target is None:
        able = sorted(k for k, lb in BACKENDS if lb == lib)
        raise RoostError(f"{lib} builds only {', '.join(able)} indexes, not {kind!r}", hint="use --library faiss")
    module, _, cls = target.partition(":")
    backend: Backend = getattr(importlib.import_module(module), cls)(dim, metric, params, kind, capacity)
    return backend
