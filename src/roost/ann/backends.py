"""Vector backends under an Index: hnswlib (HNSW) and FAISS (HNSW, IVF, flat), labels = index slots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from roost.errors import RoostError

KINDS = ("hnsw", "ivf", "flat")
LIBRARIES = ("hnswlib", "faiss")
DEFAULT_LIBRARY = {"hnsw": "hnswlib", "ivf": "faiss", "flat": "faiss"}


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

    def __init__(self, dim: int, metric: str, params: dict[str, Any], capacity: int = 1024) -> None:
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
        self, q: np.ndarray, k: int, knob: int, selection: Any = None, threads: int = 0
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

    def tune_values(self, k: int) -> list[int]:
        """ef_search values tried when tuning for a target recall."""
        return [v for v in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048) if v >= k]


class FaissBackend:
    """FAISS IndexHNSWFlat / IndexIVFFlat / IndexFlat; HNSW and flat mark deletes, IVF removes natively."""

    library = "faiss"

    def __init__(self, dim: int, metric: str, params: dict[str, Any], kind: str) -> None:
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
        self, q: np.ndarray, k: int, knob: int, selection: Any = None, threads: int = 0
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
        return self.index.reconstruct_batch(labels.astype(np.int64))

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
            if self.kind == "ivf":
                self.index.set_direct_map_type(self.faiss.DirectMap.Hashtable)

    def tune_values(self, k: int) -> list[int]:
        """ef_search (HNSW) or nprobe (IVF) values tried when tuning for a target recall."""
        if self.kind == "hnsw":
            return [v for v in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048) if v >= k]
        if self.kind == "ivf":
            nlist = int(self.params.get("nlist") or 1)
            return sorted({min(v, nlist) for v in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512)})
        return [0]


def make_backend(
    kind: str, library: str | None, dim: int, metric: str, params: dict[str, Any], capacity: int = 1024
) -> HnswlibBackend | FaissBackend:
    """The backend for an index kind and library (None: the measured default for the kind)."""
    if kind not in KINDS:
        raise RoostError(f"unknown index kind {kind!r}", hint="one of " + ", ".join(KINDS))
    lib = library or DEFAULT_LIBRARY[kind]
    if lib not in LIBRARIES:
        raise RoostError(f"unknown ANN library {lib!r}", hint="one of " + ", ".join(LIBRARIES))
    if lib == "hnswlib":
        if kind != "hnsw":
            raise RoostError(f"hnswlib builds only hnsw indexes, not {kind!r}", hint="use --library faiss")
        return HnswlibBackend(dim, metric, params, capacity)
    return FaissBackend(dim, metric, params, kind)
