"""LightGBM's categorical splits in an ONNX TreeEnsemble (for model_import.fasttrees): a split on a set of categories
becomes a chain of BRANCH_EQ nodes, one per category, as onnxmltools writes it."""

from __future__ import annotations

import numpy as np


def category_chains(trees: list[dict[str, str]], splits: list[np.ndarray], cat: np.ndarray) -> list[np.ndarray] | None:
    """Each categorical split (indices `cat` of `splits`: tree, node, feature, threshold, true id, false id,
    missing-true) as onnxmltools writes it: a chain of BRANCH_EQ nodes, one per category of its set (ascending), each
    sending its category to the split's left child and the rest on down the chain, the last to the right child; NaN
    to the split's default side (false: on to the right). The split itself becomes the chain's first node (changed in
    place); returns the other nodes (numbered from 2L-1 in their tree) as columns like `splits`, or None for a
    malformed set."""
    tree_of, _, feature, threshold, true_id, false_id, missing_true = splits
    sets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    next_id: dict[int, int] = {}
    rows: list[tuple[int, int, int, float, int, int, int]] = []
    for i in cat.tolist():
        t = int(tree_of[i])
        if t not in sets:
            sets[t] = (
                np.array(trees[t]["cat_boundaries"].split(), dtype=np.int64),
                np.array(trees[t]["cat_threshold"].split(), dtype=np.uint32),
            )
            next_id[t] = 2 * int(trees[t]["num_leaves"]) - 1
        bounds, words = sets[t]
        k = int(threshold[i])
        if threshold[i] != k or not 0 <= k < len(bounds) - 1:
            return None
        bits = np.unpackbits(words[bounds[k] : bounds[k + 1]].astype("<u4").view(np.uint8), bitorder="little")
        cats = np.flatnonzero(bits).tolist()
        if not cats:
            return None
        ids = list(range(next_id[t], next_id[t] + len(cats) - 1))
        next_id[t] += len(ids)
        on = [*ids, int(false_id[i])]  # where "not this category" goes from each node of the chain
        threshold[i], false_id[i], back = cats[0], on[0], int(missing_true[i])
        rows.extend((t, n, int(feature[i]), c, int(true_id[i]), nxt, back) for n, c, nxt in zip(ids, cats[1:], on[1:]))
    cols: list[list[float]] = [list(c) for c in zip(*rows)] if rows else [[] for _ in range(7)]
    kinds = (np.int64, np.int64, np.int64, np.float64, np.int64, np.int64, np.int64)
    return [np.array(c, dtype=k) for c, k in zip(cols, kinds)]
