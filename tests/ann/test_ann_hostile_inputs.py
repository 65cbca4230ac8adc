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
    with pytest.raises(RoostError, match="vector 0 is too large"):
        index.upsert([0, 1], big)
    index.upsert([0, 1], np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(RoostError, match="too large"):
        index.search(big, k=2)
    cos = Index(4, "cosine", kind)
    cos.upsert([0, 1], big)
    assert cos.search(np.array([[1e30, 1e29, 0, 0]], np.float32), k=1).ids[0].tolist() == [0]
