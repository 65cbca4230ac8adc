"""Hostile embeddings files and batches: messages a user can act on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.ann.index import Index
from roost.errors import RoostError


def test_duplicate_numpy_id_is_quoted_as_the_user_wrote_it() -> None:
    """The message said `id np.int64(7) appears twice`; the user wrote 7."""
    index = Index(4, "l2", "flat")
    with pytest.raises(RoostError) as err:
        index.upsert(np.array([7, 7]), np.ones((2, 4), np.float32))
    assert err.value.message == "id 7 appears twice in one batch"


def test_empty_embeddings_file_says_it_has_no_rows(ws) -> None:
    """An empty file was blamed on its column type ('is null, not a list of numbers')."""
    from roost.ann import build_index

    pd.DataFrame({"item_id": pd.Series([], dtype="int64"), "embedding": pd.Series([], dtype=object)}).to_parquet(
        "e.parquet"
    )
    with pytest.raises(RoostError, match="no rows"):
        build_index("empty", "e.parquet", id_column="item_id")


@pytest.mark.parametrize("exclude", ["ab", 0, 5])
def test_exclude_must_be_a_list_of_ids(exclude: object) -> None:
    """exclude='ab' was read letter by letter (dropping items 'a' and 'b'); exclude=0 was ignored as falsy."""
    index = Index(4, "l2", "flat")
    index.upsert(["ab", "a", "b", "c"], np.eye(4, dtype=np.float32))
    with pytest.raises(RoostError, match="exclude"):
        index.search(np.eye(4, dtype=np.float32)[:1], k=2, exclude=exclude)  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", ["l2", "ip"])
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_vectors_whose_squared_length_overflows_float32_are_refused(metric: str, kind: str) -> None:
    """|x|² past float32's range made L2/IP scores inf or NaN and the order arbitrary (cosine normalises: fine)."""
    index = Index(4, metric, kind)
    big = np.array([[1e30, 0, 0, 0], [0, 1e30, 0, 0]], np.float32)
    with pytest.raises(RoostError, match=r"vector 0 (\(id 0\) )?is too large"):
        index.upsert([0, 1], big)
    index.upsert([0, 1], np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(RoostError, match="too large"):
        index.search(big, k=2)
    cos = Index(4, "cosine", kind)
    cos.upsert([0, 1], big)
    assert cos.search(np.array([[1e30, 1e29, 0, 0]], np.float32), k=1).ids[0].tolist() == [0]


@pytest.mark.parametrize("kind", ["hnsw", "flat"])
@pytest.mark.parametrize("ef", [10**9, 2**70, 32_769, 0, -5, 2.5, "64", True])
def test_search_effort_out_of_range_or_not_an_int_is_refused(kind: str, ef: object) -> None:
    """ef was uncapped (10**9 asked for a scan of the whole graph, 2**70 escaped as hnswlib's TypeError, 2.5 and -5
    were silently turned into something else); now a RoostError naming ef and its ceiling (Milvus's 32768)."""
    index = Index(4, "l2", kind)
    x = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    index.upsert(list(range(50)), x)
    with pytest.raises(RoostError, match=r"ef must be an integer between 1 and 32768") as err:
        index.search(x[:1], k=3, ef=ef)  # type: ignore[arg-type]
    assert err.value.hint
    with pytest.raises(RoostError, match=r"ef must be"):
        index.search_ids([0], k=3, ef=ef)  # type: ignore[arg-type]


def test_search_effort_at_the_ceiling_is_exact() -> None:
    """ef = 32768 is allowed (numpy ints too) and, above the graph's size, gives the brute-force neighbours."""
    from roost.ann import brute

    index = Index(4, "l2", "hnsw")
    x = np.random.default_rng(2).standard_normal((400, 4)).astype(np.float32)
    index.upsert(list(range(400)), x)
    top, _ = brute.search(x, x[:5], 7, "l2")
    for ef in (32_768, np.int64(32_768)):
        res = index.search(x[:5], k=7, ef=ef)  # type: ignore[arg-type]
        assert [r.tolist() for r in res.ids] == top.tolist()
