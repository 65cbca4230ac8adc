"""Pick the smallest search effort (ef_search or nprobe) that reaches a target recall@k on the index's own items."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from roost.ann import brute

log = logging.getLogger(__name__)


def measure(
    index: Any, queries: np.ndarray, truth: list[np.ndarray], k: int, knob: int, self_ids: list[Any] | None = None
) -> float:
    """recall@k of the index at one effort setting against exact neighbour ids (query items left out)."""
    res = index.search(queries, k + (1 if self_ids is not None else 0), ef=knob)
    found = []
    for i, ids in enumerate(res.ids):
        row = ids.tolist()
        if self_ids is not None:
            row = [x for x in row if x != self_ids[i]]
        found.append(row[:k])
    return brute.recall(found, truth)


def tune(
    index: Any,
    target: float = 0.95,
    k: int = 10,
    sample: int = 1000,
    seed: int = 0,
    vectors: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> dict[str, Any]:
    """Set index.params[knob] to the smallest value reaching `target` recall@k; returns what was measured.

    Queries are up to `sample` rows of `queries` (e.g. user-tower embeddings: tune on what will be asked),
    else stored items, each left out of its own answers. The truth is brute force over all live items. The sample
    is 1,000 by default: the chosen effort is the smallest that reaches the target on it, so it sits at the edge
    of the target there, and a small sample's noise (about ±1.5 points of recall at 200 queries) showed up as a
    shortfall on the rest of the queries.
    Pass `vectors`/`ids` (the built rows) to avoid reading the vectors back from the backend.
    """
    knob = index.backend.knob
    index.params["target_recall"] = float(target)
    n = len(index)
    if not knob or n < 2:
        return {"recall_at_k": 1.0, "k": k, "knob": knob or None, "value": None, "queries": 0}
    if vectors is None or ids is None:
        slots = np.flatnonzero(index.items.alive[: index.items.n])
        vectors = index.backend.vectors(slots)
        ids = index.items.ids[slots]
    elif index.metric == "cosine":
        vectors = brute.normalize(vectors)
    rng = np.random.default_rng(seed)
    metric = "l2" if index.metric == "l2" else "ip"
    if queries is not None and len(queries):
        from roost.ann.checks import as_matrix

        q = as_matrix(queries, index.dim, "tuning query", zero_ok=index.metric != "cosine")  # rows as given
        q = q[rng.choice(len(q), size=min(sample, len(q)), replace=False)]
        q = brute.normalize(q) if index.metric == "cosine" else q
        kk = min(k, n)
        top, _ = brute.search(vectors, q, kk, metric)
        truth_ids = [ids[row].tolist() for row in top]
        self_ids = None
        source = "queries"
    else:
        pick = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
        q = vectors[pick]
        kk = min(k, n - 1)
        top, _ = brute.search(vectors, q, kk + 1, metric)
        truth = [[x for x in row.tolist() if x != p][:kk] for row, p in zip(top, pick)]
        truth_ids = [ids[np.asarray(t, np.int64)].tolist() for t in truth]
        self_ids = ids[pick].tolist()
        source = "items"
    queries = q
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
    return {
        "recall_at_k": tried[chosen],
        "k": kk,
        "knob": knob,
        "value": int(chosen),
        "target": target,
        "queries": len(queries),
        "query_source": source,
        "tried": tried,
    }
