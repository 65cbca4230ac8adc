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
    with TestClient(app(open_indexes(["items"])), raise_server_exceptions=False) as c:
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
