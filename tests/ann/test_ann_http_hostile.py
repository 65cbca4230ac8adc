"""Hostile bodies on the ANN routes: each a 4xx with a message, never a 500."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def client(ws):
    """A 300-item index with string ids, served by a TestClient that turns server exceptions into 500s."""
    from starlette.testclient import TestClient

    from roost.ann import build_index
    from roost.ann.http import app
    from roost.ann.serving import open_indexes

    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    pd.DataFrame({"item_id": [f"s{i}" for i in range(300)], "embedding": list(x)}).to_parquet("emb.parquet")
    build_index("items", "emb.parquet", id_column="item_id")
    json_type = {"content-type": "application/json"}  # raw bodies, declared JSON (an untyped body is a 415)
    with TestClient(
        app(open_indexes(["items"])), base_url="http://127.0.0.1:8090", headers=json_type, raise_server_exceptions=False
    ) as c:
        yield c


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("upsert", {"items": [{"id": "q", "vector": [0.5] * 8, "attributes": 5}]}),
        ("upsert", {"items": [{"id": "q", "vector": [0.5] * 8, "attributes": ["a"]}]}),
        ("reload", {"version": "abc"}),
        ("reload", {"version": [1]}),
        ("reload", {"version": 1.5}),
        ("reload", {"ref": 5}),
    ],
)
def test_hostile_bodies_are_400_with_a_message(client, route: str, body: dict) -> None:
    """These escaped as AttributeError/ValueError/TypeError (500 Internal Server Error)."""
    r = client.post(f"/v1/indexes/items/{route}", content=json.dumps(body))
    assert r.status_code == 400, r.text
    assert r.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"vector": [0.5] * 8, "k": 5, "ef": 10**9},
        {"vector": [0.5] * 8, "k": 5, "ef": 2**70},
        {"id": "s1", "k": 5, "ef": 10**9},
        {"ids": ["s1", "s2"], "k": 5, "ef": 2**64},
    ],
)
def test_search_effort_over_the_ceiling_is_400_naming_ef_and_the_maximum(client, body: dict) -> None:
    """A huge ef (10**9) was passed on to the graph search as is; now a 400 that names the ceiling."""
    r = client.post("/v1/indexes/items/search", content=json.dumps(body))
    assert r.status_code == 400, r.text
    assert "ef must be an integer between 1 and 32768" in r.json()["error"]


@pytest.mark.parametrize("k", [10**9, 2**70, 0, "5"])
def test_k_out_of_range_is_400_naming_k(client, k: object) -> None:
    """k was already capped (regression guard): a 400 naming k, not a scan sized by it."""
    r = client.post("/v1/indexes/items/search", content=json.dumps({"vector": [0.5] * 8, "k": k}))
    assert r.status_code == 400, r.text
    assert "k must be an integer between 1 and 10000" in r.json()["error"]


def test_search_effort_at_the_ceiling_answers(client) -> None:
    """ef = 32768 (the documented maximum) is served."""
    r = client.post("/v1/indexes/items/search", content=json.dumps({"id": "s1", "k": 3, "ef": 32768}))
    assert r.status_code == 200, r.text
    assert len(r.json()["results"][0]) == 3
