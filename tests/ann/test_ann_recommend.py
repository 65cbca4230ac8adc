"""Two-stage recommend: user tower → index candidates → LightGBM ranker → top-k, checked step by step by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.errors import RoostError


@pytest.fixture
def rec_state(ws, models):
    """Flat (exact) inner-product index of the item embeddings with ranker attributes, plus a Recommender."""
    from roost.ann import build_index, embed
    from roost.ann.serving import open_indexes

    embed(
        models["two_tower"],
        models["items_path"],
        "emb.parquet",
        id_column="item_id",
        keep=["category", "price", "quality_score"],
    )
    build_index("items", "emb.parquet", metric="ip", kind="flat")
    return open_indexes(
        ["items"], recommend={"items": (str(models["two_tower"]), str(models["ranker"]))}, candidates=50
    )


def _user(models, i: int) -> dict:
    u = models["users"].iloc[i]
    return {
        c: (None if pd.isna(u[c]) else u[c].item() if hasattr(u[c], "item") else u[c])
        for c in ["user_id", "country", "age_group", "device"]
    }


def test_recommend_equals_the_pipeline_by_hand(rec_state, models) -> None:
    from roost.modelpkg import load

    users = [_user(models, i) for i in (0, 5, 9)]
    got = rec_state.recommenders["items"].recommend(users, k=10, candidates=50)
    tt, ranker = load(models["two_tower"]), load(models["ranker"])
    items = models["items"].set_index("item_id")
    item_vecs = tt.embed(models["items"], "item")
    ue = tt.embed(pd.DataFrame(users), "user")
    for u, uvec, recs in zip(users, ue, got):
        cand = models["items"]["item_id"].to_numpy()[np.argsort(-(item_vecs @ uvec), kind="stable")[:50]]
        frame = items.loc[cand, ["category", "price", "quality_score"]].reset_index()
        for c in ("country", "age_group", "device"):
            frame[c] = u[c]
        p = ranker.predict(frame)
        want = frame["item_id"].to_numpy()[np.argsort(-p, kind="stable")[:10]]
        assert [r["id"] for r in recs] == want.tolist()
        assert [r["score"] for r in recs] == pytest.approx(np.sort(p)[::-1][:10].tolist(), abs=1e-6)
        assert all(r["retrieval_score"] <= float((item_vecs @ uvec).max()) + 1e-4 for r in recs)


def test_recommend_filter_exclude_and_no_ranker(rec_state, models) -> None:
    from roost.ann.recommend import Recommender

    rec = rec_state.recommenders["items"]
    u = _user(models, 1)
    out = rec.recommend([u], k=5, filter={"category": "games"})[0]
    cats = models["items"].set_index("item_id")["category"]
    assert len(out) == 5 and all(cats[r["id"]] == "games" for r in out)
    first = rec.recommend([u], k=5)[0]
    again = rec.recommend([u], k=5, exclude=[first[0]["id"]])[0]
    assert first[0]["id"] not in [r["id"] for r in again]
    plain = Recommender(rec_state.slots["items"], str(models["two_tower"]), None).recommend([u], k=5)[0]
    assert [r["score"] for r in plain] == [r["retrieval_score"] for r in plain]
    assert plain[0]["score"] >= plain[-1]["score"]


def test_recommend_errors(rec_state, models, tmp_path) -> None:
    from roost.ann.index import Index
    from roost.ann.recommend import Recommender
    from roost.ann.serving import IndexSlot

    rec = rec_state.recommenders["items"]
    with pytest.raises(RoostError, match=r"user features missing: \['device'\]"):
        rec.recommend([{"user_id": 1, "country": "US", "age_group": "25-34"}])
    small = IndexSlot("x", index=Index(8), name="x")
    with pytest.raises(RoostError, match="16-dimensional.*has 8"):
        Recommender(small, str(models["two_tower"]))
    bare = IndexSlot("y", index=rec_state.slots["items"].index, name="y")
    bare.index = Index(16, "ip", "flat")
    bare.index.upsert([1], np.ones((1, 16)))
    with pytest.raises(RoostError, match="ranking model needs.*category"):
        Recommender(bare, str(models["two_tower"]), str(models["ranker"])).recommend([_user(models, 0)])


def test_recommend_candidates_zero_is_an_error(rec_state, models) -> None:
    """candidates=0 fell back to the server's default silently (`0 or default`); k=0 was already refused."""
    with pytest.raises(RoostError, match="between 1 and"):
        rec_state.recommenders["items"].recommend([_user(models, 0)], k=5, candidates=0)


def test_recommend_over_http(rec_state, models) -> None:
    from starlette.testclient import TestClient

    from roost.ann.http import app

    users = [_user(models, 2), _user(models, 3)]
    want = rec_state.recommenders["items"].recommend(users, k=7)
    with TestClient(app(rec_state), base_url="http://127.0.0.1:8090") as c:
        r = c.post("/v1/recommend/items", json={"users": users, "k": 7})
        assert r.status_code == 200
        assert [[x["id"] for x in row] for row in r.json()["results"]] == [[x["id"] for x in row] for row in want]
        r = c.post("/v1/recommend/items", json={"user": {"user_id": 3}, "k": 7})
        assert r.status_code == 400 and "country" in r.json()["error"]
        assert c.post("/v1/recommend/nope", json={"user": users[0]}).status_code == 404
