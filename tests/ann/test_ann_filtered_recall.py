"""Filtered search keeps the index's recall target at every selectivity (numpy brute force as the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from roost.ann.index import Index
from roost.ann.tuning import tune

SELECTIVITIES = (0.5, 0.25, 0.05, 0.01, 0.001)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "library"), [("hnsw", "hnswlib"), ("hnsw", "faiss"), ("ivf", "faiss")])
def test_filtered_recall_reaches_the_target_at_every_selectivity(kind: str, library: str, helpers) -> None:
    """20k random 32-d items, effort tuned to 0.95 on 200 queries; 200 other queries per filter, ANN forced."""
    n, d = 20_000, 32
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, d), dtype=np.float32)
    q = rng.standard_normal((400, d), dtype=np.float32)
    u = rng.random(n)
    index = Index(d, "cosine", kind, library, exact_limit=0)  # no exact search by size: the plan must hold
    index.upsert(np.arange(n), x, {"u": u})
    tuned = tune(index, 0.95, vectors=x, ids=np.arange(n), queries=q[:200])
    target = index.params["target_recall"]
    assert target == 0.95
    held_out = q[200:]
    got = {}
    for s in SELECTIVITIES:
        match = u < s
        truth = np.flatnonzero(match)[helpers.brute_top(x[match], held_out, 10)]
        res = index.search(held_out, 10, filter={"u": {"lt": s}})
        assert all(match[ids].all() for ids in res.ids)
        got[s] = helpers.recall_at(res.ids, truth)
    print(f"{kind}/{library} tuned {tuned['knob']}={tuned['value']}: filtered recall@10 {got}")
    assert all(r >= target for r in got.values()), got
