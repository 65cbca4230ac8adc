"""Probe of hostile inputs and damaged files: each a clear RoostError (HTTP 400) or the brute-force answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from roost.errors import RoostError

JSON_TYPE = {"content-type": "application/json"}  # raw bodies, declared JSON (an untyped body is a 415)
KINDS = [("hnsw", "hnswlib"), ("hnsw", "faiss"), ("ivf", "faiss"), ("flat", "faiss"), ("flat", "numpy")]


def _index(kind: str = "flat", library: str = "numpy", metric: str = "l2", dim: int = 8):
    from roost.ann.index import Index

    return Index(dim, metric, kind, library, **({"nlist": 4} if kind == "ivf" else {}))


# -- persisted files: truncated, flipped, emptied, missing or swapped → RoostError naming the file --------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each kind saved twice: 300 items (the one damaged) and 200 other items (a donor of swapped files)."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("saved")
    out = {}
    for kind, lib in KINDS:
        for n, tag in ((300, "a"), (200, "b")):
            ix = _index(kind, lib, "cosine")
            ix.upsert(np.arange(n), rng.normal(size=(n, 8)), {"c": ["x", "y"] * (n // 2)})
            ix.delete([3, 4])
            ix.save(root / f"{kind}-{lib}-{tag}")
        out[(kind, lib)] = root / f"{kind}-{lib}-a"
    return out


def _vectors_file(d: Path) -> Path:
    return next(p for p in d.iterdir() if p.name.startswith("vectors."))


def _damage(path: Path, how: str, donor: Path) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # a few bytes in the middle: the structure may stay readable, the content does not
        b = bytearray(data)
        for p in range(len(b) // 2, min(len(b), len(b) // 2 + 64), 8):
            b[p] ^= 0x5A
        path.write_bytes(bytes(b))
    elif how == "missing":
        path.unlink()
    elif how == "swapped":
        shutil.copyfile(donor / path.name, path)


@pytest.mark.parametrize("how", ["truncate", "empty", "flip", "missing", "swapped"])
@pytest.mark.parametrize("which", ["vectors", "items.parquet"])
@pytest.mark.parametrize(("kind", "library"), KINDS)
def test_damaged_index_files_are_refused_naming_the_file(
    saved, tmp_path: Path, kind: str, library: str, which: str, how: str
) -> None:
    """Before: faiss/hnswlib RuntimeError, ArrowInvalid, OSError, numpy ValueError, or (missing faiss/numpy
    vectors, flipped data bytes, a file from another index) a load that served wrong or empty answers."""
    from roost.ann.index import Index

    src = saved[(kind, library)]
    d = tmp_path / "ix"
    shutil.copytree(src, d)
    target = _vectors_file(d) if which == "vectors" else d / which
    _damage(target, how, src.with_name(src.name[:-1] + "b"))
    with pytest.raises(RoostError) as exc:
        Index.load(d)
    assert target.name in exc.value.message
    assert exc.value.hint


@pytest.mark.parametrize("how", ["truncate", "empty", "missing", "swapped"])
@pytest.mark.parametrize("which", ["vectors", "items.parquet"])
@pytest.mark.parametrize(("kind", "library"), KINDS)
def test_damaged_files_of_an_index_saved_without_fingerprints_are_refused(
    saved, tmp_path: Path, kind: str, library: str, which: str, how: str
) -> None:
    """Indexes saved before index.json recorded file sizes and checksums: the readers' own errors, a missing
    file and a file from another index (its item or vector count differs) are RoostErrors naming the file."""
    from roost.ann.index import Index

    src = saved[(kind, library)]
    d, donor = tmp_path / "ix", tmp_path / "donor"
    shutil.copytree(src, d)
    shutil.copytree(src.with_name(src.name[:-1] + "b"), donor)
    for folder in (d, donor):
        doc = json.loads((folder / "index.json").read_text())
        doc.pop("files", None)
        (folder / "index.json").write_text(json.dumps(doc))
    target = _vectors_file(d) if which == "vectors" else d / which
    _damage(target, how, donor)
    with pytest.raises(RoostError) as exc:
        Index.load(d)
    assert target.name in exc.value.message


@pytest.mark.parametrize("how", ["truncate", "empty", "flip", "missing"])
def test_damaged_index_json_is_refused(saved, tmp_path: Path, how: str) -> None:
    """A truncated or garbled index.json raised JSONDecodeError / KeyError / UnicodeDecodeError."""
    from roost.ann.index import Index

    d = tmp_path / "ix"
    shutil.copytree(saved[("hnsw", "hnswlib")], d)
    _damage(d / "index.json", how, d)
    with pytest.raises(RoostError, match="index.json"):
        Index.load(d)


@pytest.mark.parametrize("doc", [[], {"format": 1}, {"format": 1, "dim": "x"}])
def test_index_json_with_wrong_fields_is_refused(saved, tmp_path: Path, doc) -> None:
    from roost.ann.index import Index

    d = tmp_path / "ix"
    shutil.copytree(saved[("flat", "numpy")], d)
    (d / "index.json").write_text(json.dumps(doc))
    with pytest.raises(RoostError, match="index.json"):
        Index.load(d)


@pytest.mark.parametrize(("kind", "library"), KINDS)
def test_undamaged_index_loads_and_answers_like_brute_force(saved, kind: str, library: str) -> None:
    from roost.ann.index import Index

    ix = Index.load(saved[(kind, library)])
    q = np.random.default_rng(5).normal(size=(3, 8))
    got = ix.search(q, k=5, ef=4096)
    stored = ix.get([i for i in range(300) if i not in (3, 4)])
    base = stored["vectors"].astype(np.float64)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    want = np.asarray(stored["ids"])[np.argsort(-(qn @ base.T), axis=1, kind="stable")[:, :5]]
    assert [r.tolist() for r in got.ids] == want.tolist()


def test_cli_query_on_a_damaged_folder_exits_2_with_a_message(saved, tmp_path: Path, cli) -> None:
    d = tmp_path / "ix"
    shutil.copytree(saved[("hnsw", "hnswlib")], d)
    _damage(d / "vectors.hnswlib", "truncate", d)
    code, _out, err = cli("index", "query", str(d), "--id", "5")
    assert code == 2
    assert "vectors.hnswlib" in err


def test_http_reload_of_a_damaged_folder_is_400_and_the_old_version_keeps_serving(saved, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from roost.ann.http import app
    from roost.ann.index import Index
    from roost.ann.serving import AnnState, IndexSlot

    d = tmp_path / "ix"
    shutil.copytree(saved[("flat", "faiss")], d)
    slot = IndexSlot(str(d), index=Index.load(d), name="items")
    _damage(d / "items.parquet", "truncate", d)
    with TestClient(
        app(AnnState({"items": slot})),
        base_url="http://127.0.0.1:8090",
        headers=JSON_TYPE,
        raise_server_exceptions=False,
    ) as c:
        r = c.post("/v1/indexes/items/reload", content=json.dumps({"ref": str(d)}))
        assert r.status_code == 400, r.text
        assert "items.parquet" in r.json()["error"]
        r = c.post("/v1/indexes/items/search", content=json.dumps({"id": 7, "k": 3}))
        assert r.status_code == 200 and len(r.json()["results"][0]) == 3


# -- attribute names that collide with the item table's own columns ----------------------------------------------


@pytest.mark.parametrize(("kind", "library"), [("hnsw", "hnswlib"), ("flat", "numpy")])
def test_underscore_attribute_names_survive_save_and_load(tmp_path: Path, kind: str, library: str) -> None:
    """An attribute named `_id` overwrote the id column on save (ids became the attribute's values after load);
    `_slot`, `_alive` clobbered theirs, and any other `_x` attribute was silently dropped by load."""
    from roost.ann.index import Index

    rng = np.random.default_rng(1)
    ids = np.arange(100, 140)
    x = rng.normal(size=(40, 8))
    attrs = {"_id": [f"t{i}" for i in range(40)], "_alive": [i % 3 for i in range(40)], "_x": ["u"] * 40}
    ix = _index(kind, library)
    ix.upsert(ids, x, attrs)
    ix.save(tmp_path / "ix")
    back = Index.load(tmp_path / "ix")
    assert len(back) == 40
    got = back.get(ids.tolist())
    assert got["ids"] == ids.tolist()
    assert got["attributes"]["_id"].tolist() == attrs["_id"]
    assert got["attributes"]["_x"].tolist() == attrs["_x"]
    hits = back.search(x[:1], k=40, filter={"_alive": 0}, ef=4096).ids[0].tolist()
    assert sorted(hits) == [int(ids[i]) for i in range(40) if i % 3 == 0]


# -- ids ---------------------------------------------------------------------------------------------------------


def test_uint64_ids_beyond_int64_are_refused_not_wrapped() -> None:
    """np.uint64(2**63 + 5) was stored as -9223372036854775803."""
    ix = _index()
    with pytest.raises(RoostError, match="64 bits"):
        ix.upsert(np.array([1, 2**63 + 5], np.uint64), np.ones((2, 8)))
    assert len(ix) == 0
    ix.upsert(np.array([1, 2**63 - 1], np.uint64), np.ones((2, 8)))
    assert sorted(ix.search(np.ones(8), k=5).ids[0].tolist()) == [1, 2**63 - 1]


def test_ids_and_text_that_are_not_valid_unicode_are_refused() -> None:
    """A lone surrogate id was stored; every later answer that held it failed to serialise (HTTP 500), and
    saving the index failed with UnicodeEncodeError."""
    ix = _index()
    ix.upsert(["ok"], np.ones((1, 8)))
    with pytest.raises(RoostError, match="id") as exc:
        ix.upsert(["fine", "bad\ud800"], np.ones((2, 8)))
    assert "UTF-8" in exc.value.message
    with pytest.raises(RoostError, match="attribute 'c'"):
        ix.upsert(["x"], np.ones((1, 8)), {"c": ["\udcff"]})
    assert len(ix) == 1
    assert ix.search(np.ones(8), k=5).to_list() == [[{"id": "ok", "score": 0.0}]]


def test_unicode_string_ids_round_trip(tmp_path: Path) -> None:
    from roost.ann.index import Index

    ids = ["café", "日本語", "emoji 🚀", "", "a\x00b", "e\u0301"]
    ix = _index()
    x = np.eye(8)[: len(ids)]
    ix.upsert(ids, x)
    ix.save(tmp_path / "ix")
    back = Index.load(tmp_path / "ix")
    for i, v in enumerate(ids):
        assert back.search(x[i], k=1).ids[0].tolist() == [v]


def test_http_upsert_of_a_lone_surrogate_id_is_400_and_search_still_answers() -> None:
    from starlette.testclient import TestClient

    from roost.ann.http import app
    from roost.ann.serving import AnnState, IndexSlot

    ix = _index(metric="cosine")
    ix.upsert([f"s{i}" for i in range(20)], np.random.default_rng(2).normal(size=(20, 8)))
    with TestClient(
        app(AnnState({"items": IndexSlot("items", index=ix)})),
        base_url="http://127.0.0.1:8090",
        headers=JSON_TYPE,
        raise_server_exceptions=False,
    ) as c:
        r = c.post("/v1/indexes/items/upsert", content=b'{"ids": ["bad\\ud800"], "vectors": [[1,2,3,4,5,6,7,8]]}')
        assert r.status_code == 400, r.text
        r = c.post("/v1/indexes/items/search", content=json.dumps({"vector": [1] * 8, "k": 50}))
        assert r.status_code == 200, r.text
        assert len(r.json()["results"][0]) == 20


# -- vectors -----------------------------------------------------------------------------------------------------


def test_complex_vectors_are_refused_not_silently_truncated() -> None:
    """numpy dropped the imaginary part (a ComplexWarning) and the search answered for the real part alone."""
    ix = _index()
    ix.upsert([1, 2], np.eye(8)[:2])
    with pytest.raises(RoostError, match="complex"):
        ix.search(np.array([1j, 1, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(RoostError, match="complex"):
        ix.upsert([3], np.array([[1 + 1j] * 8]))


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_other_float_and_int_dtypes_answer_like_float32(dtype) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-5, 5, size=(50, 8)).astype(np.float32)
    q = rng.integers(-5, 5, size=(4, 8)).astype(np.float32)
    a, b = _index("flat", "numpy", "cosine"), _index("flat", "numpy", "cosine")
    a.upsert(np.arange(50), x)
    b.upsert(np.arange(50), x.astype(dtype))
    ra, rb = a.search(q, k=7), b.search(q.astype(dtype), k=7)
    for i in range(4):
        np.testing.assert_allclose(rb.scores[i], ra.scores[i], atol=1e-6)


# -- filters -----------------------------------------------------------------------------------------------------


def _flagged():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 8))
    flag = [bool(i % 3 == 0) for i in range(60)]
    ix = _index("flat", "numpy", "l2")
    ix.upsert(np.arange(60), x, {"flag": flag, "cat": ["a", "b", "c"] * 20})
    return ix, x, np.asarray(flag)


@pytest.mark.parametrize(
    ("flt", "want"),
    [
        ({"flag": True}, lambda f: f),
        ({"flag": False}, lambda f: ~f),
        ({"flag": [True]}, lambda f: f),
        ({"flag": {"in": [False]}}, lambda f: ~f),
        ({"flag": {"ne": True}}, lambda f: ~f),
        ({"flag": {"nin": [True]}}, lambda f: ~f),
    ],
)
def test_boolean_attributes_filter_like_brute_force(flt, want) -> None:
    """{"flag": true} was refused ('attribute is numeric'), and {"flag": [true]} silently matched nothing."""
    ix, x, flag = _flagged()
    q = np.zeros(8)
    got = ix.search(q, k=60, filter=flt).ids[0].tolist()
    allowed = np.flatnonzero(want(flag))
    d = ((x[allowed] - q) ** 2).sum(1)
    assert got == allowed[np.argsort(d, kind="stable")].tolist()


def test_boolean_filter_after_an_upsert_without_the_attribute() -> None:
    """Items upserted without `flag` leave it missing; true/false still select the others exactly."""
    ix, x, flag = _flagged()
    ix.upsert([100], np.zeros((1, 8)), {"cat": ["a"]})
    got = set(ix.search(np.zeros(8), k=100, filter={"flag": True}).ids[0].tolist())
    assert got == set(np.flatnonzero(flag).tolist())
    got = set(ix.search(np.zeros(8), k=100, filter={"flag": False}).ids[0].tolist())
    assert got == set(np.flatnonzero(~flag).tolist())


@pytest.mark.parametrize(
    "flt",
    [
        {"cat": [["a"]]},
        {"cat": {"in": [{"x": 1}]}},
        {"cat": {"nin": [["a"]]}},
        {"flag": [[True]]},
        {"cat": {"in": "a"}},
    ],
)
def test_filter_lists_of_non_scalars_are_refused(flt) -> None:
    """A list inside an `in` list raised TypeError: unhashable type (HTTP 500)."""
    ix, _, _ = _flagged()
    with pytest.raises(RoostError, match="filter 'cat'|filter 'flag'"):
        ix.search(np.zeros(8), k=5, filter=flt)


@pytest.mark.parametrize("k", [1, 5, 60, 500])
def test_filters_that_match_nothing_or_everything_combined_with_k(k: int) -> None:
    ix, x, _ = _flagged()
    q = np.full(8, 0.3)
    order = np.argsort(((x - q) ** 2).sum(1), kind="stable")
    assert ix.search(q, k=k, filter={"cat": "zzz"}).ids[0].tolist() == []
    assert ix.search(q, k=k, filter={"cat": {"in": []}}).ids[0].tolist() == []
    every = ix.search(q, k=k, filter={"cat": {"in": ["a", "b", "c"]}}).ids[0].tolist()
    assert every == order[:k].tolist()


def test_filter_on_an_unknown_attribute_names_it_and_the_known_ones() -> None:
    ix, _, _ = _flagged()
    with pytest.raises(RoostError, match="unknown attribute 'ct'") as exc:
        ix.search(np.zeros(8), k=5, filter={"ct": "a"})
    assert "cat" in (exc.value.hint or "")


# -- attributes --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [[["a"], ["b", "c"]], [[1, 2], [3]], [{"a": 1}, ["b"]], [[1, 2], [3, 4]], [{"a": 1}, {"b": 2}]]
)
def test_ragged_or_nested_attribute_values_are_refused(values) -> None:
    """[["a"], ["b", "c"]] raised numpy's ValueError 'inhomogeneous shape' (HTTP 500)."""
    ix = _index()
    with pytest.raises(RoostError, match="attribute 'tags'"):
        ix.upsert([1, 2], np.ones((2, 8)), {"tags": values})
    assert len(ix) == 0


# -- HTTP --------------------------------------------------------------------------------------------------------


@pytest.fixture
def client():
    from starlette.testclient import TestClient

    from roost.ann.http import app
    from roost.ann.serving import AnnState, IndexSlot

    ix = _index("hnsw", "hnswlib", "cosine")
    ix.upsert([f"s{i}" for i in range(50)], np.random.default_rng(0).normal(size=(50, 8)), {"cat": ["a", "b"] * 25})
    with TestClient(
        app(AnnState({"items": IndexSlot("items", index=ix)})),
        base_url="http://127.0.0.1:8090",
        headers=JSON_TYPE,
        raise_server_exceptions=False,
    ) as c:
        yield c


@pytest.mark.parametrize(
    ("route", "raw"),
    [
        ("search", "[" * 100_000 + "]" * 100_000),
        ("search", '{"vector": ' + "[" * 50_000 + "]" * 50_000 + "}"),
        ("search", json.dumps({"vector": [1] * 8, "k": 3, "filter": {"cat": [["a"]]}})),
        ("search", json.dumps({"vector": [1] * 8, "k": 3, "filter": {"cat": {"in": [{"a": 1}]}}})),
        ("upsert", json.dumps({"ids": ["x", "y"], "vectors": [[1] * 8] * 2, "attributes": {"t": [["a"], ["b", 1]]}})),
        ("upsert", json.dumps({"items": [{"id": "x", "vector": [1] * 8, "attributes": {"t": [1, [2]]}}]})),
    ],
)
def test_hostile_bodies_are_400_and_the_service_keeps_serving(client, route: str, raw: str) -> None:
    """Deeply nested JSON (RecursionError), unhashable filter values (TypeError) and ragged attribute values
    (ValueError) were 500 Internal Server Error."""
    r = client.post(f"/v1/indexes/items/{route}", content=raw)
    assert r.status_code == 400, r.text
    assert r.json()["error"]
    r = client.post("/v1/indexes/items/search", content=json.dumps({"vector": [1] * 8, "k": 3}))
    assert r.status_code == 200 and len(r.json()["results"][0]) == 3


# -- CLI ---------------------------------------------------------------------------------------------------------


def test_roost_ann_is_the_index_group(cli) -> None:
    """`roost ann --help` answered "No such command 'ann'" (the package is roost.ann, the group `index`)."""
    code, out, err = cli("ann", "--help")
    assert code == 0, err
    for verb in ("build", "query", "serve", "update"):
        assert verb in out


# -- bad vectors in a build: the message names the item ----------------------------------------------------------


@pytest.mark.parametrize(("bad", "word"), [(np.nan, "NaN"), (np.inf, "infinity")])
def test_a_non_finite_vector_in_a_large_build_names_its_id(ws, tmp_path: Path, bad: float, word: str) -> None:
    """build_index upserts in chunks of 20,000 rows: row 20,005's NaN was reported as 'vector 5', pointing at the
    wrong item; now the id is named, and no version is recorded."""
    import pandas as pd

    from roost.ann import build_index, list_indexes

    x = np.random.default_rng(6).normal(size=(20_010, 4)).astype(np.float32)
    x[20_005, 2] = bad
    pd.DataFrame({"sku": [f"sku-{i}" for i in range(len(x))], "embedding": list(x)}).to_parquet("emb.parquet")
    with pytest.raises(RoostError) as exc:
        build_index("items", "emb.parquet", id_column="sku", kind="flat")
    assert f"(id 'sku-20005') contains {word}" in exc.value.message
    assert list_indexes() == []


def test_upsert_errors_name_the_id_of_the_bad_row() -> None:
    ix = _index(metric="cosine")
    with pytest.raises(RoostError, match=r"vector 1 \(id 42\) is all zeros"):
        ix.upsert([7, 42], [[1.0] * 8, [0.0] * 8])
    with pytest.raises(RoostError, match=r"vector 1 \(id 'b'\) has 3 dimensions"):
        ix.upsert(["a", "b"], [[1.0] * 8, [1.0] * 3])
    assert len(ix) == 0


@pytest.mark.parametrize("second", [7, 20_005])
def test_a_build_refuses_an_id_on_two_rows_wherever_the_rows_are(ws, second: int) -> None:
    """Two rows with one id in the same 20,000-row chunk were refused, but in different chunks the later row
    silently replaced the first (20,009 items, and tuning's brute-force truth still held the replaced vector)."""
    import pandas as pd

    from roost.ann import build_index, list_indexes

    x = np.random.default_rng(7).normal(size=(20_010, 4)).astype(np.float32)
    ids = np.arange(len(x))
    ids[second] = 3
    pd.DataFrame({"item_id": ids, "embedding": list(x)}).to_parquet("emb.parquet")
    with pytest.raises(RoostError, match="id 3 appears"):
        build_index("items", "emb.parquet", id_column="item_id", kind="flat")
    assert list_indexes() == []


def test_boolean_attribute_with_missing_values_is_stored_and_filters(ws) -> None:
    """[True, None] was refused as 'mixes text and other values (True)' — a Parquet bool column with nulls could
    not be built, nor could per-item upserts where only some items carry the flag."""
    ix = _index()
    flags = [True, None, False, True, None]
    ix.upsert(np.arange(5), np.eye(8)[:5], {"flag": flags})
    got = ix.search(np.zeros(8), k=10, filter={"flag": True}).ids[0].tolist()
    assert sorted(got) == [i for i, f in enumerate(flags) if f is True]
    got = ix.search(np.zeros(8), k=10, filter={"flag": {"exists": False}}).ids[0].tolist()
    assert sorted(got) == [i for i, f in enumerate(flags) if f is None]


def test_numpy_scalars_in_filters_match_like_python_numbers() -> None:
    """{"n": np.int64(5)} was refused ('attribute is numeric, got 5'), and after a search with {"n": "5"} it hit
    that search's cached mask (the key was json.dumps(default=str)) and silently matched nothing."""
    ix = _index()
    n = np.arange(40) % 7
    ix.upsert(np.arange(40), np.random.default_rng(8).normal(size=(40, 8)), {"n": n, "s": [f"t{v}" for v in n]})
    want = sorted(np.flatnonzero(n == 5).tolist())
    assert ix.search(np.zeros(8), k=40, filter={"n": "5"}).ids[0].tolist() == []
    for flt in (
        {"n": np.int64(5)},
        {"n": [np.int32(5)]},
        {"n": {"in": np.array([5])}},
        {"n": {"gte": np.float32(4.5), "lt": np.uint8(6)}},
        {"s": np.str_("t5")},
        {"n": (5,)},
    ):
        assert sorted(ix.search(np.zeros(8), k=40, filter=flt).ids[0].tolist()) == want, flt


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("flat.npy", lambda p: np.save(p, np.zeros(5))),
        ("cube.npy", lambda p: np.save(p, np.zeros((2, 3, 4)))),
        ("complex.npy", lambda p: np.save(p, np.ones((5, 4), complex))),
        ("text.npy", lambda p: np.save(p, np.array([["1", "2"]]))),
        ("objects.npy", lambda p: np.save(p, np.array([[1, "a"]], object), allow_pickle=True)),
        ("junk.npy", lambda p: p.write_bytes(b"garbage")),
        ("cut.npy", lambda p: (np.save(p, np.ones((50, 4))), p.write_bytes(p.read_bytes()[:100]))),
        ("junk.parquet", lambda p: p.write_bytes(b"PAR1garbagePAR1")),
    ],
)
def test_unreadable_embeddings_files_are_refused_naming_the_file(ws, cli, name: str, make) -> None:
    """A 1-D .npy raised IndexError, a damaged one ValueError, a bad Parquet ArrowInvalid (tracebacks from
    `roost index build`); complex vectors lost their imaginary part and a text array was parsed as numbers."""
    from roost.ann import list_indexes

    make(Path(name))
    code, _out, err = cli("index", "build", "items", "--embeddings", name, "-q")
    assert code == 2, err
    assert name in err
    assert list_indexes() == []


def test_an_all_zero_tuning_query_for_cosine_is_named_by_its_row(ws) -> None:
    """The zero row was found only after sampling had shuffled the queries: 'vector 173 is all zeros' named
    another row, and did not say it was a tuning query."""
    from roost.ann import build_index

    x = np.random.default_rng(9).normal(size=(300, 4)).astype(np.float32)
    q = np.random.default_rng(10).normal(size=(200, 4)).astype(np.float32)
    q[7] = 0
    with pytest.raises(RoostError, match="tuning query 7 is all zeros"):
        build_index("items", _embeddings(x), tune_queries=q)


def _embeddings(x: np.ndarray):
    from roost.ann.embeddings import Embeddings

    return Embeddings(np.arange(len(x)), x)


@pytest.mark.parametrize(
    ("flt", "want"),
    [
        ({"price": None}, lambda p: np.isnan(p)),
        ({"price": {"eq": None}}, lambda p: np.isnan(p)),
        ({"price": {"ne": None}}, lambda p: ~np.isnan(p)),
        ({"price": [None, 2.0]}, lambda p: np.isnan(p) | (p == 2.0)),
        ({"price": {"exists": False}}, lambda p: np.isnan(p)),
    ],
)
def test_null_in_a_numeric_filter_selects_the_missing_values_as_for_text(flt, want) -> None:
    """{"cat": null} selected the items without `cat`, but {"price": null} silently matched nothing and
    {"price": {"ne": null}} everything, missing ones included."""
    ix = _index()
    price = np.array([1.0, np.nan, 2.0, np.nan, 3.0, 2.0])
    ix.upsert(np.arange(6), np.eye(8)[:6], {"price": [None if np.isnan(v) else v for v in price], "cat": ["a"] * 6})
    ix.upsert([6], np.eye(8)[6:7], {"cat": ["b"]})  # no price at all
    price = np.append(price, np.nan)
    got = sorted(ix.search(np.zeros(8), k=10, filter=flt).ids[0].tolist())
    assert got == np.flatnonzero(want(price)).tolist()


def test_attributes_of_an_id_deleted_after_the_search_are_missing_not_another_items() -> None:
    """recommend reads the candidates' attributes after the search; an id deleted in between (slot -1) was read
    as slot 0, so the ranker scored the candidate with the first item's attributes."""
    ix = _index()
    ix.upsert([10, 11, 12], np.eye(8)[:3], {"c": ["first", "b", "c"], "n": [1, 2, 3], "f": [True, False, True]})
    ix.delete([12])
    got = ix.attributes_of(np.array([12, 11]), ["c", "n", "f"])
    assert got["c"].tolist() == [None, "b"]
    assert np.isnan(got["n"][0]) and got["n"][1] == 2
    assert np.isnan(got["f"][0]) and got["f"][1] == 0


@pytest.mark.parametrize(("kind", "library"), KINDS)
def test_deleting_an_id_listed_twice_removes_one_item(kind: str, library: str) -> None:
    """delete([1, 1, 1]) counted the item dead three times: len() said 2 of 4, searches (k capped by that count)
    returned 2 of the 4 live items, and hnswlib raised 'already deleted' after the item table had changed."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5, 8))
    ix = _index(kind, library)
    ix.upsert(np.arange(5), x)
    assert ix.delete([1, 1, 1, 9, 9]) == [9, 9]
    assert len(ix) == 4
    q = np.zeros(8)
    live = np.array([0, 2, 3, 4])
    want = live[np.argsort(((x[live] - q) ** 2).sum(1), kind="stable")].tolist()
    assert ix.search(q, k=10, ef=64).ids[0].tolist() == want
    ix.upsert([1], x[1:2])
    assert len(ix) == 5


def test_http_delete_of_repeated_ids_counts_each_item_once(client) -> None:
    r = client.post("/v1/indexes/items/delete", content=json.dumps({"ids": ["s1", "s1", "s2", "zz", "zz"]}))
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == 2 and r.json()["count"] == 48
    r = client.post("/v1/indexes/items/search", content=json.dumps({"vector": [1] * 8, "k": 100}))
    assert len(r.json()["results"][0]) == 48


@pytest.mark.parametrize(
    "exclude", [np.array([1, 2]), np.array([], np.int64), {1, 2}, (1, 2), [np.int64(1), np.int64(2)]]
)
def test_exclude_as_an_array_set_or_tuple_excludes_like_a_list(exclude) -> None:
    """exclude=np.array([1, 2]) raised numpy's 'truth value of an array is ambiguous' ValueError, an empty array
    the same, and a set a TypeError."""
    x = np.random.default_rng(12).normal(size=(6, 8))
    ix = _index()
    ix.upsert(np.arange(6), x)
    gone = {int(v) for v in exclude}
    order = [i for i in np.argsort((x**2).sum(1), kind="stable").tolist() if i not in gone]
    assert ix.search(np.zeros(8), k=3, exclude=exclude).ids[0].tolist() == order[:3]


@pytest.mark.parametrize("offset", [0.0, 1_000.0, 30_000.0])
@pytest.mark.parametrize(("kind", "library", "flt"), [("flat", "numpy", None), ("hnsw", "hnswlib", {"c": "a"})])
def test_exact_l2_search_far_from_the_origin_equals_brute_force(offset: float, kind: str, library: str, flt) -> None:
    """The exact L2 search (the flat numpy index, and every filtered search over few enough items) scored
    |q|² + |x|² - 2 q·x in float32: with vectors around 1,000 a third of the top 10 was wrong, around 30,000
    nearly all — against float64 differences, and against hnswlib's own unfiltered answers."""
    rng = np.random.default_rng(13)
    x = (offset + rng.normal(size=(3000, 8))).astype(np.float32)
    q = (offset + rng.normal(size=(40, 8))).astype(np.float32)
    ix = _index(kind, library, "l2")
    ix.upsert(np.arange(3000), x, {"c": ["a", "b"] * 1500})
    allowed = np.arange(0, 3000, 2) if flt else np.arange(3000)
    d = ((q[:, None, :].astype(np.float64) - x[allowed][None].astype(np.float64)) ** 2).sum(-1)
    want = allowed[np.argsort(d, axis=1, kind="stable")[:, :10]]
    for batch in (q, *q[:5]):  # all 40 at once, and single queries
        got = ix.search(batch, k=10, filter=flt).ids
        ref = want if batch.ndim == 2 else want[[int(np.flatnonzero((q == batch).all(1))[0])]]
        recall = np.mean([len(set(g.tolist()) & set(r.tolist())) / 10 for g, r in zip(got, ref)])
        assert recall >= 0.99, (offset, batch.ndim, recall)


def test_http_upsert_with_thousands_of_new_attribute_names_is_400(client) -> None:
    """Each new attribute name allocates a column over every slot of the index: one 1 MB request with 50,000
    names made 50,000 columns (at 1M items, 400 GB). Now at most 1,024 attributes per index."""
    attrs = {f"a{i}": [1] for i in range(2000)}
    body = {"ids": ["new"], "vectors": [[1] * 8], "attributes": attrs}
    r = client.post("/v1/indexes/items/upsert", content=json.dumps(body))
    assert r.status_code == 400, r.text
    assert "1024" in r.json()["error"]
    info = client.get("/v1/indexes/items").json()
    assert info["attributes"] == ["cat"] and info["count"] == 50
    r = client.post("/v1/indexes/items/search", content=json.dumps({"vector": [1] * 8, "k": 3}))
    assert r.status_code == 200 and len(r.json()["results"][0]) == 3


def test_http_search_whose_answer_would_be_huge_is_400(client) -> None:
    """50,000 queries x k=10,000 over 50 items asked for 2.5M hits (at 10k items, 500M: the server OOMs while a
    64 MB body allows about 3M queries); the limit is 1M hits per answer."""
    body = {"vectors": [[1] * 8] * 50_000, "k": 10_000}
    r = client.post("/v1/indexes/items/search", content=json.dumps(body))
    assert r.status_code == 400, r.text[:200]
    assert "1,000,000" in r.json()["error"]
    r = client.post("/v1/indexes/items/search", content=json.dumps({"vectors": [[1] * 8] * 1000, "k": 50}))
    assert r.status_code == 200 and len(r.json()["results"]) == 1000
