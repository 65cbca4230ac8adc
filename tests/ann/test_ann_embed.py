"""roost embed and roost index on real two-tower embeddings: output equals the towers, recall vs brute force."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest


def _embed(cli, models, out="emb.parquet"):
    code, stdout, err = cli(
        "embed",
        str(models["two_tower"]),
        "--items",
        str(models["items_path"]),
        "--out",
        out,
        "--id-column",
        "item_id",
        "--keep",
        "category,price,quality_score",
        "--batch-size",
        "4096",
        "--json",
    )
    assert code == 0, err
    return json.loads(stdout)


def test_embed_writes_tower_output_with_ids(ws, cli, models) -> None:
    from roost.modelpkg import load

    res = _embed(cli, models)
    items = models["items"]
    assert res["rows"] == len(items) and res["dim"] == 16
    t = pq.read_table("emb.parquet")
    assert t.column_names == ["item_id", "category", "price", "quality_score", "embedding"]
    assert json.loads(t.schema.metadata[b"roost"])["id_column"] == "item_id"
    np.testing.assert_array_equal(t.column("item_id").to_numpy(), items["item_id"].to_numpy())
    got = np.stack(t.column("embedding").to_numpy(zero_copy_only=False))
    want = load(models["two_tower"]).embed(items, "item")
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(np.unique(got.round(5), axis=0)) > 0.9 * len(items)  # real, distinct vectors


def test_embed_errors(ws, cli, models) -> None:
    code, _, err = cli("embed", str(models["two_tower"]), "--items", "nope.parquet", "--out", "x.parquet")
    assert code == 2 and "not found" in err
    models["items"][["item_id", "price"]].to_parquet("thin.parquet")
    code, _, err = cli("embed", str(models["two_tower"]), "--items", "thin.parquet", "--out", "x.parquet")
    assert code == 2 and "category" in err and "quality_score" in err


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_index_recall_on_real_embeddings(ws, cli, models, helpers, metric: str) -> None:
    """User-tower queries against item-tower embeddings: recall@10 vs numpy brute force, plain and filtered."""
    from roost.ann import load_index

    _embed(cli, models)
    models["users"].to_parquet("users.parquet")
    code, _, err = cli(
        "embed",
        str(models["two_tower"]),
        "--items",
        "users.parquet",
        "--which",
        "user",
        "--id-column",
        "user_id",
        "--out",
        "users_emb.parquet",
        "-q",
    )
    assert code == 0, err
    code, out, err = cli(
        "index",
        "build",
        "items",
        "--embeddings",
        "emb.parquet",
        "--metric",
        metric,
        "--tune-queries",
        "users_emb.parquet",
        "--json",
    )
    assert code == 0, err
    rec = json.loads(out)
    assert rec["version"] == 1 and rec["count"] == len(models["items"]) and rec["id_column"] == "item_id"
    assert rec["recall_at_10"] >= 0.95 and rec["tuning"]["query_source"] == "queries"
    index = load_index("items")
    item_vecs = _vectors("emb.parquet")
    users = _vectors("users_emb.parquet")
    item_ids = models["items"]["item_id"].to_numpy()
    truth = item_ids[helpers.brute_top(item_vecs, users, 10, metric)]
    res = index.search(users, 10)
    r = helpers.recall_at(res.ids, truth)
    print(f"{metric}: recall@10 of {len(users)} user-tower queries over {len(item_ids)} item embeddings: {r:.4f}")
    assert r >= 0.95
    # filtered: every hit matches, and the answer is brute force over the matching items
    cats = models["items"]["category"].to_numpy()
    pick = cats == cats[0]
    res = index.search(users, 10, filter={"category": str(cats[0])})
    assert all(set(cats[np.searchsorted(item_ids, ids)]) == {cats[0]} for ids in res.ids)
    sub_truth = item_ids[pick][helpers.brute_top(item_vecs[pick], users, 10, metric)]
    assert helpers.recall_at(res.ids, sub_truth) >= 0.95


def _vectors(path: str) -> np.ndarray:
    return np.stack(pq.read_table(path).column("embedding").to_numpy(zero_copy_only=False))


def test_index_cli_versions_alias_update_query(ws, cli, models) -> None:
    _embed(cli, models)
    assert cli("index", "build", "items", "--embeddings", "emb.parquet", "-q")[0] == 0
    code, out, _ = cli(
        "index", "build", "items", "--embeddings", "emb.parquet", "--kind", "flat", "--alias", "prod", "--json"
    )
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = cli("index", "versions", "items", "--json")
    vs = json.loads(out)
    assert [v["version"] for v in vs] == [1, 2] and vs[1]["aliases"] == ["prod"] and vs[1]["kind"] == "flat"
    assert all(v["run_id"] for v in vs)
    first = int(models["items"]["item_id"].iloc[0])
    code, out, _ = cli("index", "query", "items@prod", "--id", str(first), "-k", "5", "--json")
    hits = json.loads(out)["results"][0]
    assert code == 0 and len(hits) == 5 and first not in [h["id"] for h in hits]
    code, out, _ = cli("index", "update", "items@prod", "--delete", f"{first},{hits[0]['id']}", "--json")
    assert code == 0 and json.loads(out)["version"] == 3 and json.loads(out)["count"] == len(models["items"]) - 2
    code, out, _ = cli("index", "query", "items/3", "--id", str(hits[1]["id"]), "-k", "5", "--json")
    got = [h["id"] for h in json.loads(out)["results"][0]]
    assert first not in got and hits[0]["id"] not in got
    code, out, _ = cli("index", "list", "--json")
    assert json.loads(out)[0]["latest_version"] == 3 and json.loads(out)[0]["aliases"] == {"prod": 2}
    code, _, err = cli("index", "query", "itemz", "--id", "1")
    assert code == 2 and "did you mean 'items'" in err
    code, _, err = cli("index", "query", "items", "--vector", "1,2,3")
    assert code == 2 and "3 dimensions" in err and "16" in err
