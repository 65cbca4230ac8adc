"""Two-stage recommendation: user-tower embedding → index candidates → ranking model → top-k."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from roost.ann.checks import check_k
from roost.errors import RoostError


def _load(model: Any) -> Any:
    if model is None or not isinstance(model, str) and hasattr(model, "run"):
        return model
    from roost.modelpkg import load_model

    return load_model(model)


class Recommender:
    """Candidates from an IndexSlot for each user's tower embedding, re-scored by a ranking model package."""

    def __init__(self, slot: Any, user_model: Any, ranker: Any = None, candidates: int = 100) -> None:
        self.slot = slot
        self.user_tower = _load(user_model).tower("user")
        dim = int(self.user_tower.signature["outputs"][0]["shape"][-1])
        if dim > 0 and dim != slot.index.dim:
            raise RoostError(
                f"the user tower makes {dim}-dimensional embeddings, index {slot.name!r} has {slot.index.dim}",
                hint="serve the index built from the same two-tower model",
            )
        self.ranker = _load(ranker)
        if self.ranker is not None and self.ranker.task == "multiclass":
            raise RoostError("the ranking model is multiclass", hint="rank with a binary or regression model")
        self.candidates = check_k(candidates)

    @property
    def user_columns(self) -> list[str]:
        """Request fields the user tower reads."""
        return list(self.user_tower.inputs)

    def _user_frame(self, users: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        if not users or not all(isinstance(u, Mapping) for u in users):
            raise RoostError(
                "send `user` (an object of user features) or `users` (a list of them)",
                hint=f"the user tower reads {self.user_columns}",
            )
        missing = sorted({c for u in users for c in self.user_columns if c not in u})
        if missing:
            raise RoostError(f"user features missing: {missing}", hint=f"the user tower reads {self.user_columns}")
        keys = sorted({c for u in users for c in u})
        return {c: [u.get(c) for u in users] for c in keys}

    def _rank(self, index: Any, users: dict[str, list[Any]], ids: list[np.ndarray]) -> list[np.ndarray]:
        """Ranking-model scores for each user's candidates."""
        sizes = [len(x) for x in ids]
        flat = np.concatenate(ids) if ids else np.zeros(0)
        id_col = index.meta.get("id_column")
        attrs = set(index.attribute_names)
        feed: dict[str, Any] = {}
        missing = []
        for c in self.ranker.inputs:
            if c == id_col:
                feed[c] = flat
            elif c in attrs:
                feed[c] = index.attributes_of(flat, [c])[c]
            elif c in users:
                feed[c] = np.repeat(np.asarray(users[c], dtype=object), sizes)
            else:
                missing.append(c)
        if missing:
            raise RoostError(
                f"the ranking model needs {missing}, found neither in the request nor in the index",
                hint="send them as user features, or build the index with them as attributes",
            )
        if not len(flat):
            return [np.zeros(0, np.float32) for _ in ids]
        scores = np.asarray(self.ranker.predict(feed), np.float64).reshape(-1)
        return np.split(scores, np.cumsum(sizes)[:-1])

    def recommend(
        self,
        users: Sequence[Mapping[str, Any]],
        k: int = 10,
        candidates: int | None = None,
        filter: Mapping[str, Any] | None = None,
        exclude: Sequence[Any] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Top-k items per user: {id, score (ranker, or retrieval without one), retrieval_score}."""
        k = check_k(k)
        n_cand = max(check_k(self.candidates if candidates is None else candidates), k)
        index = self.slot.index
        cols = self._user_frame(users)
        emb = self.user_tower.run({c: cols[c] for c in self.user_columns}, ["embedding"])["embedding"]
        res = index.search(np.asarray(emb, np.float32), n_cand, filter=filter, exclude=exclude)
        rank = self._rank(index, cols, res.ids) if self.ranker is not None else res.scores
        out = []
        for ids, ret, sc in zip(res.ids, res.scores, rank):
            order = np.argsort(-np.asarray(sc), kind="stable")[:k]
            out.append(
                [
                    {"id": i, "score": float(s), "retrieval_score": float(r)}
                    for i, s, r in zip(ids[order].tolist(), np.asarray(sc)[order].tolist(), ret[order].tolist())
                ]
            )
        return out
