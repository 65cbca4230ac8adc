"""Pick the smallest search effort (ef_search or nprobe) that reaches a target recall@k on the index's own items."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from roost.ann import brute

log = logging.getLogger(__name__)


def measure(index: Any, queries: np.ndarray, truth: list[np.ndarray], k: int, knob: int,
            self_ids: list[Any] | None = None) -> float:
    """recall@k of the index at one effort setting against exact neighbour ids (query items left out)."""
    res = index.search(queries, k + (1 if self_ids is not None else 0), ef=knob)
    found = []
    for i, ids in enumerate(res.ids):
        row = ids.tolist()
        if self_ids is not None:
            row = [x for x in row if x != self_ids[i]]
        found.append(row[:k])
    return brute.recall(found, truth)


def tune(index: Any, target: float = 0.95, k: int = 10, sample: int = 200, seed: int = 0,
         vectors: np.ndarray | None = None, ids: np.ndarray | None = None) -> dict[str, Any]:
    """Set index.params[knob] to the smallest value reaching `target` recall@k; returns what was measured.

    Queries are `sample` stored items (each left out of its own answers); the truth is brute force over all
    live items. Pass `vectors`/`ids` (the built rows) to avoid reading the vectors back from the backend.
    """
    knob = index.backend.knob
    n = len(index)
    if not knob or n < 2:
        return {"recall_at_k": 1.0, "k": k, "knob": knob or None, "value": None, "queries": 0}
    if vectors is None or ids is None:
        slots = np.flatnonzero(index.items.alive[:index.items.n])
        vectors = index.backend.vectors(slots)
        ids = index.items.ids[slots]
    elif index.metric == "cosine":
        vectors = brute.normalize(vectors)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    queries = vectors[pick]
    kk = min(k, n - 1)
    top, _ = brute.search(vectors, queries, kk + 1, "l2" if index.metric == "l2" else "ip")
    truth = [[x for x in row.tolist() if x != p][:kk] for row, p in zip(top, pick)]
    truth_ids = [ids[np.asarray(t, np.int64)].tolist() for t in truth]
    self_ids = ids[pick].tolist()
    tried: dict[int, float] = {}
    chosen = None
    for v in index.backend.tune_values(kk):
        r = measure(index, queries, truth_ids, kk, v, self_ids)
        tried[v] = round(r, 4)
        if r >= target:
            chosen = v
            break
    if chosen is None:
        chosen = max(tried)
        log.warning("recall@%d target %.2f not reached (best %.3f at %s=%d)", kk, target, tried[chosen], knob, chosen)
    index.params[knob] = int(chosen)
    return {"recall_at_k": tried[chosen], "k": kk, "knob": knob, "value": int(chosen), "target": target,
            "queries": len(pick), "tried": tried}
