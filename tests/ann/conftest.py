"""Fixtures for the ANN tests: a real two-tower model and a LightGBM ranker trained on the engagement log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

USER = ["user_id", "country", "age_group", "device"]
ITEM = ["item_id", "category", "price", "quality_score"]
RANK = ["country", "age_group", "device", "category", "price", "quality_score"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two-tower package (user/item towers, dim 16), ranker package, latest item and user snapshots."""
    return train_models(tmp_path_factory.mktemp("ann-models"))


def train_models(root: Path) -> dict[str, Any]:
    """Train the two-tower model and the ranker into `root`; return paths and the item/user tables."""
    from roost.datasets.engagement import generate
    from roost.datasets.joins import pit_join
    from roost.training.models import make_model

    t = generate(6000, seed=3, users=400, items=20_000, days=3)
    flat = pit_join(t["impressions"], t["users"], t["items"])
    tt = make_model("two_tower", user_features=USER, item_features=ITEM, epochs=1, dim=16, hidden=[32])
    tt.fit(
        flat[USER + ITEM].iloc[:5000],
        flat["clicked"].iloc[:5000],
        flat[USER + ITEM].iloc[5000:],
        flat["clicked"].iloc[5000:],
    )
    tt.save_package(root / "two_tower", flat[USER + ITEM].iloc[:300], label="clicked")
    rk = make_model("lightgbm", n_estimators=20)
    rk.fit(flat[RANK].iloc[:5000], flat["clicked"].iloc[:5000], flat[RANK].iloc[5000:], flat["clicked"].iloc[5000:])
    rk.save_package(root / "ranker", flat[RANK].iloc[:300], label="clicked")
    items = t["items"].sort_values("event_time").groupby("item_id", as_index=False).last()
    users = t["users"].sort_values("event_time").groupby("user_id", as_index=False).last()
    items.drop(columns=["event_time", "created_time"]).to_parquet(root / "items.parquet")
    return {
        "two_tower": root / "two_tower",
        "ranker": root / "ranker",
        "items": items,
        "users": users,
        "items_path": root / "items.parquet",
        "root": root,
    }


def brute_top(base: np.ndarray, queries: np.ndarray, k: int, metric: str = "cosine") -> np.ndarray:
    """Exact top-k row indices, written independently of roost (numpy only)."""
    b, q = base.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    sim = -((q[:, None, :] - b[None]) ** 2).sum(-1) if metric == "l2" else q @ b.T
    return _top_k(sim, k)


def _top_k(sim: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the k largest values, largest first, ties by lower index: exactly
    `np.argsort(-sim, kind="stable")[:, :k]`, without sorting whole rows (a 500 x 100k sort cost ~40 s under load)."""
    k = min(k, sim.shape[1])
    if k == 0 or k == sim.shape[1]:
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]
    kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1]  # each row's k-th largest value
    out = np.empty((sim.shape[0], k), dtype=np.intp)
    for i, row in enumerate(sim):
        cand = np.flatnonzero(row >= kth[i])  # the top k and every tie with the k-th, in index order
        out[i] = cand[np.argsort(-row[cand], kind="stable")[:k]]
    return out


def recall_at(found: list, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / |truth| over queries."""
    return float(np.mean([len(set(np.asarray(f).tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)]))


@pytest.fixture
def helpers() -> Any:
    """brute_top and recall_at, for test modules (importlib mode cannot import conftest by name)."""
    import types

    return types.SimpleNamespace(brute_top=brute_top, recall_at=recall_at, USER=USER, ITEM=ITEM, RANK=RANK)


__all__ = ["Path"]
