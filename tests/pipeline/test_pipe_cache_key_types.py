"""The cache key keeps the types a task sees: {1: "a"} and {"1": "a"} (or True/1/1.0, tuple/list) never share a key."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from roost.pipeline import Pipeline, task
from roost.pipeline.cache import cache_key
from roost.pipeline.runner import run_pipeline


def _key(inputs: dict, refs: dict | None = None) -> str:
    return cache_key("t", "code", inputs, refs)


@pytest.mark.parametrize(
    "variants",
    [
        [{1: "a"}, {"1": "a"}],  # int vs str key
        [{True: "a"}, {1.5: "a"}, {"True": "a"}, {"true": "a"}, {None: "a"}, {"None": "a"}, {"null": "a"}],
        [{1: "a"}, {1.0: "a"}, {"1.0": "a"}],  # 1 == 1.0 in Python, but a task can tell them apart (type, repr)
        [{(1, 2): "a"}, {"(1, 2)": "a"}],  # tuple key vs its str()
        [[1, 2], (1, 2)],  # list vs tuple value: `xs + [3]` works on one, raises on the other
        [1, True, 1.0, "1"],  # values (JSON already tells these apart; kept as a regression)
    ],
)
def test_inputs_of_different_types_get_different_keys(variants):
    """Each variant is a different input to the task, so each gets its own cache key (in inputs and in refs)."""
    keys = {_key({"m": v}) for v in variants}
    assert len(keys) == len(variants)
    ref_keys = {_key({}, {"r": v}) for v in variants}
    assert len(ref_keys) == len(variants)


def test_a_string_key_that_mimics_a_type_tag_stays_its_own_key():
    """A user's string key that starts with the tag character cannot forge the tagged form of another key."""
    variants = [{1: "a"}, {"\x00int:1": "a"}, {"\x00str:\x00int:1": "a"}, {"\x00tuple": [1]}, (1,)]
    assert len({_key({"m": v}) for v in variants}) == len(variants)


def test_a_task_given_int_keys_is_not_served_the_result_for_str_keys(ws):
    """End to end: the second run sees a different dict and runs again, returning its own answer."""
    calls = []

    @task
    def kinds(m: dict) -> list:
        calls.append(m)
        return sorted(type(k).__name__ for k in m)

    with Pipeline("a") as p:
        kinds({1: "a"})
    assert run_pipeline(p).output("kinds") == ["int"]
    with Pipeline("a") as p:
        kinds({"1": "a"})
    res = run_pipeline(p)
    assert res.tasks["kinds"].state == "succeeded" and res.output("kinds") == ["str"] and len(calls) == 2
    with Pipeline("a") as p:
        kinds({"1": "a"})
    assert run_pipeline(p).tasks["kinds"].state == "cached" and len(calls) == 2  # same input again: cached


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from roost.pipeline.cache import cache_key
    params = {
        "lr": 0.1, "epochs": 3, "name": "m", "flags": [True, False, None], "nested": {"b": 1, "a": [1.5, "x"]},
        "tags": {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"},
        "ints": {3: "c", 1: "a", 2: "b"}, "pair": ("p", "q"),
    }
    print(json.dumps([cache_key("t", "code", params), cache_key("t", "code", {"x": 1}, {"s": {"u", "v", "w"}})]))
    """
)


def test_keys_are_the_same_in_processes_with_different_hash_seeds(tmp_path):
    """JSON-like params (and sets of strings, whose order follows the hash seed) give one key in every process."""
    out = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        out.add(tuple(json.loads(proc.stdout)))
    assert len(out) == 1


def test_a_dict_shaped_like_a_file_marker_is_not_the_file(ws):
    """A params dict with the keys the fingerprint writes for a file ({"file", "sha256"}, {"path", ...},
    {"missing"}, {"glob", "files"}) gets another key than the file, path, missing path or glob it imitates."""
    data = ws.root / "rows.csv"
    data.write_text("a\n1\n")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()  # computed here, not by roost
    real = str(data.resolve())
    pairs = [
        (data, {"file": real, "sha256": digest}),
        ("rows.csv", {"path": "rows.csv", "file": real, "sha256": digest}),
        (ws.root / "nowhere.csv", {"missing": str(ws.root / "nowhere.csv")}),
        ("rows.*", {"glob": "rows.*", "files": [[real, digest]]}),
        (ws.root, {"folder": str(ws.root.resolve()), "files": []}),
    ]
    assert [a for a, imitation in pairs if _key({"m": a}) == _key({"m": imitation})] == []
