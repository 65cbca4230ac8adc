"""Inner product on a graph index: a later vector longer than every earlier one must rank and score exactly."""

from __future__ import annotations

import numpy as np
import pytest

from roost.ann.index import Index


@pytest.mark.parametrize("library", ["hnswlib", "faiss"])
def test_longer_vector_added_later_ranks_by_true_inner_product(library: str) -> None:
    """The MIPS transform's norm bound is fixed by the first batch; a longer vector used to score (R²-|x|²)/2+q·x."""
    rng = np.random.default_rng(5)
    first = rng.normal(size=(200, 6)).astype(np.float32)
    later = (rng.normal(size=(20, 6)) * 4).astype(np.float32)  # longer than every first-batch vector
    index = Index(6, "ip", "hnsw", library)
    index.upsert(list(range(200)), first)
    index.upsert(list(range(200, 220)), later)
    base = np.vstack([first, later]).astype(np.float64)
    q = rng.normal(size=(10, 6)).astype(np.float32)

    def check(alive: np.ndarray) -> None:
        res = index.search(q, k=5, ef=1000)  # effort above the size: the graph search is exhaustive
        for i in range(len(q)):
            sim = base[alive] @ q[i].astype(np.float64)
            truth = alive[np.argsort(-sim, kind="stable")[:5]]
            assert set(res.ids[i].tolist()) == set(truth.tolist())
            want = base[res.ids[i]] @ q[i].astype(np.float64)
            np.testing.assert_allclose(res.scores[i], want, rtol=1e-4, atol=1e-4)

    check(np.arange(220))
    index.delete([0, 1, 2])  # dead items stay dead through any rebuild
    check(np.arange(3, 220))
    index.upsert([3], first[3:4] * 10)  # a replaced item, longer again
    base[3] *= 10
    check(np.arange(3, 220))
