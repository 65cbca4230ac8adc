"""The ANN HTTP routes through Starlette's TestClient: search, filters, upsert/delete, reload/replay, errors."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

D = 16


def _write(path: str, ids: np.ndarray, x: np.ndarray, cat: np.ndarray) -> None:
    pd.DataFrame({"item_id": ids, "cat": cat, "embedding": list(x)}).to_parquet(path)


@pytest.fixture
def served(ws):
    """Index `items` (2000 vectors, attribute cat) built in the workspace and served by a TestClient."""
    from starlette.testclient import TestClient

    from roost.ann import build_index
    from roost.ann.http import app
    from roost.ann.serving import open_indexes

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, D)).astype(np.float32)
    cat = rng.choice(["a", "b", "c"], 2000)
    _write("emb.parquet", np.arange(2000), x, cat)
    build_index("items", "emb.parquet", id_column="item_id")
    state = open_indexes(["items"])
    json_type = {"content-type": "application/json"}  # raw bodies, declared JSON (an untyped body is a 415)
    with TestClient(app(state, max_body=200_000), base_url="http://127.0.0.1:8090", headers=json_type) as client:
        yield client, state, x, cat


def test_search_single_batch_and_by_id(served) -> None:
    client, state, x, _ = served
    q = x[:3] + 0.01
    r = client.post("/v1/indexes/items/search", json={"vector": q[0].tolist(), "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["index"] == "items" and body["version"] == 1 and len(body["results"]) == 1
    assert body["results"][0][0]["id"] == 0 and len(body["results"][0]) == 5
    r = client.post("/v1/indexes/items/search", json={"vectors": q.tolist(), "k": 4}).json()
    direct = state.slots["items"].index.search(q, 4)
    assert [[h["id"] for h in hits] for hits in r["results"]] == [ids.tolist() for ids in direct.ids]
    r = client.post("/v1/indexes/items/search", json={"ids": [0, 1], "k": 3}).json()
    assert [len(h) for h in r["results"]] == [3, 3] and 0 not in [h["id"] for h in r["results"][0]]
    info = client.get("/v1/indexes/items").json()
    assert info["count"] == 2000 and info["dim"] == D and info["attributes"] == ["cat"]
    assert client.get("/v1/indexes").json()["indexes"][0]["name"] == "items"


def test_filters_upsert_delete(served) -> None:
    client, _, x, cat = served
    q = np.random.default_rng(1).standard_normal((5, D)).tolist()
    r = client.post("/v1/indexes/items/search", json={"vectors": q, "k": 20, "filter": {"cat": ["a", "b"]}}).json()
    assert all(cat[h["id"]] in ("a", "b") for hits in r["results"] for h in hits)
    new = (np.ones(D) * 0.5).tolist()
    item = {"id": 5000, "vector": new, "attributes": {"cat": "z"}}
    r = client.post("/v1/indexes/items/upsert", json={"items": [item]})
    assert r.status_code == 200 and r.json()["count"] == 2001
    r = client.post("/v1/indexes/items/search", json={"vector": new, "k": 1, "filter": {"cat": "z"}}).json()
    assert r["results"][0][0]["id"] == 5000 and r["results"][0][0]["score"] == pytest.approx(1.0, abs=1e-5)
    r = client.post("/v1/indexes/items/upsert", json={"ids": [0], "vectors": [new], "attributes": {"cat": ["z"]}})
    assert r.json()["count"] == 2001  # replaced, not added
    r = client.post("/v1/indexes/items/delete", json={"ids": [5000, 0, 777777]}).json()
    assert r == {"index": "items", "deleted": 2, "missing": [777777], "count": 1999}
    for body in (
        {"vector": new, "k": 50},
        {"vector": x[0].tolist(), "k": 50},
        {"vector": new, "k": 5, "filter": {"cat": "z"}},
    ):
        hits = client.post("/v1/indexes/items/search", json=body).json()["results"][0]
        assert not {h["id"] for h in hits} & {0, 5000}
    assert client.post("/v1/indexes/items/search", json={"vector": new, "k": 5, "filter": {"cat": "z"}}).json()[
        "results"
    ] == [[]]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"vector": [0.1, 0.2, 0.3]}, 400, ["3 dimensions", f"has {D}"]),
        ({"vectors": [[0.0] * D, [0.1] * (D + 2)]}, 400, ["vector 1", f"{D + 2} dimensions", f"has {D}"]),
        ({"vector": [None] + [0.1] * (D - 1)}, 400, ["NaN"]),
        ({"vector": [0.1] * D, "k": 0}, 400, ["k must be"]),
        ({"vector": [0.1] * D, "filter": {"colour": "a"}}, 400, ["colour", "cat"]),
        ({"vector": [0.1] * D, "id": 3}, 400, ["exactly one"]),
        ({"id": 99999}, 404, ["99999"]),
        ({}, 400, ["exactly one"]),
    ],
)
def test_bad_search_requests(served, body: dict, status: int, words: list[str]) -> None:
    client = served[0]
    r = client.post("/v1/indexes/items/search", json=body)
    assert r.status_code == status, r.text
    assert all(w in r.json()["error"] + r.json().get("hint", "") for w in words), r.json()


def test_bad_bodies_and_unknown_index(served) -> None:
    client = served[0]
    r = client.post("/v1/indexes/items/search", content=b'{"vector": [NaN' + b", 1.0" * (D - 1) + b"]}")
    assert r.status_code == 400 and "NaN" in r.json()["error"]
    r = client.post("/v1/indexes/items/search", content=b'{"vector": [Infinity' + b", 1.0" * (D - 1) + b"]}")
    assert r.status_code == 400 and "infinity" in r.json()["error"]
    r = client.post("/v1/indexes/items/upsert", content=json.dumps({"ids": [1], "vectors": [[float("nan")] * D]}))
    assert r.status_code == 400 and "NaN" in r.json()["error"]
    assert client.post("/v1/indexes/items/search", content=b"{not json").status_code == 400
    assert client.post("/v1/indexes/items/search", content=b"[1, 2]").status_code == 400
    r = client.post("/v1/indexes/itemz/search", json={"vector": [0.1] * D})
    assert r.status_code == 404 and "did you mean 'items'" in r.json()["hint"]
    assert client.get("/v1/indexes/nope").status_code == 404
    assert client.post("/v1/indexes/nope/delete", json={"ids": [1]}).status_code == 404
    r = client.post("/v1/indexes/items/upsert", json={"vectors": [[0.1] * D] * 5000})
    assert r.status_code == 413
    r = client.post("/v1/recommend/items", json={"user": {}})
    assert r.status_code == 404 and "no recommender" in r.json()["error"]
    mixed = {"ids": [1, "x"], "vectors": [[0.1] * D] * 2}
    assert client.post("/v1/indexes/items/upsert", json=mixed).status_code == 400


def test_token(served) -> None:
    from starlette.testclient import TestClient

    from roost.ann.http import app

    with TestClient(app(served[1], token="s3cret"), base_url="http://127.0.0.1:8090") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/indexes").status_code == 401
        assert c.get("/v1/indexes", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_reload_swaps_and_replays_mutations_made_after_the_snapshot(served) -> None:
    from roost.ann import build_index

    client, state, x, cat = served
    up = {"ids": [9001], "vectors": [(np.ones(D)).tolist()], "attributes": {"cat": ["new"]}}
    assert client.post("/v1/indexes/items/upsert", json=up).status_code == 200
    build_index("items", "emb.parquet", id_column="item_id")  # v2 from a file older than the upsert
    r = client.post("/v1/indexes/items/reload", json={}).json()
    assert r["swapped"] and r["previous"] == 1 and r["version"] == 2
    assert (
        client.post("/v1/indexes/items/search", json={"vector": up["vectors"][0], "k": 1}).json()["results"][0][0]["id"]
        == 9001
    )  # replayed onto v2
    assert client.post("/v1/indexes/items/delete", json={"ids": [7]}).json()["deleted"] == 1
    time.sleep(0.05)
    _write("emb.parquet", np.arange(2000), x, cat)  # a catalogue snapshot taken after the delete: it rules
    os.utime("emb.parquet")
    build_index("items", "emb.parquet", id_column="item_id")
    r = client.post("/v1/indexes/items/reload", json={}).json()
    assert r["version"] == 3 and r["count"] == 2000
    assert client.post("/v1/indexes/items/search", json={"id": 7, "k": 1}).status_code == 200
    r = client.post("/v1/indexes/items/reload", json={"version": 1}).json()
    assert r["version"] == 1 and r["swapped"]
    assert client.post("/v1/indexes/items/reload", json={"version": 1}).json()["swapped"] is False
    assert client.post("/v1/indexes/items/reload", json={"version": 9}).status_code == 404


def test_reload_over_http_only_swaps_in_versions_of_the_served_index(served, tmp_path) -> None:
    """A client could point the served 'items' at any index folder on the server or at another registered index
    (served under the name 'items' from then on); HTTP reload now takes only versions and aliases of 'items', as a
    model server's load API only loads its own repository's models. The Python API (IndexSlot.reload) is unchanged."""
    from roost.ann import build_index
    from roost.ann.repo import local_dir, resolve, set_alias

    client, state, x, cat = served
    build_index("other", "emb.parquet", id_column="item_id")
    set_alias("other", 1, "prod")
    folder = str(local_dir(resolve("other")))
    refused = ["other", "other/1", "other@prod", "../other", "/etc", "items/../other/1", folder]
    for ref in refused:
        r = client.post("/v1/indexes/items/reload", json={"ref": ref})
        assert r.status_code == 400, (ref, r.text)
        assert "items" in r.json()["error"]
        assert state.slots["items"].version == 1
    build_index("items", "emb.parquet", id_column="item_id")
    set_alias("items", 2, "prod")
    for ref, version in (("items/2", 2), ("items/1", 1), ("items@prod", 2), ("items", 2)):
        r = client.post("/v1/indexes/items/reload", json={"ref": ref})
        assert r.status_code == 200 and r.json()["version"] == version, (ref, r.text)
