"""In-process units: the batcher's batching rule, value conversion, package reading, spec parsing."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

from roost.errors import RoostError
from roost.serve.batcher import Batcher, BatcherClosed
from roost.serve.codec import HTTPError, check_inputs, column, columns, decode_bytes, encode_bytes
from roost.serve.loader import parse_spec
from roost.serve.signature import TensorSpec, read_package


class GatedModel:
    """A fake model: doubles `x`, records batch sizes, and can hold the first run until released."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entered.set()
        assert self.gate.wait(120), "the test never opened the gate"
        x = inputs["x"]
        if np.any(x < 0):
            raise ValueError("negative input")
        self.batches.append(len(x))
        return {"y": x * 2}


async def _submit_all(b: Batcher, model: GatedModel, sizes: list[int]) -> list:
    first = b.submit({"x": np.arange(1, dtype=np.float32)}, 1)
    assert await asyncio.get_running_loop().run_in_executor(None, model.entered.wait, 120)  # model is running
    futs = [b.submit({"x": np.full(n, i, dtype=np.float32)}, n) for i, n in enumerate(sizes)]
    model.gate.set()
    return await asyncio.gather(first, *futs, return_exceptions=True)


def test_batch_is_what_queued_while_the_model_ran_capped_at_max_rows():
    model = GatedModel()
    b = Batcher(model, max_rows=10)
    res = asyncio.run(_submit_all(b, model, [3, 3, 3, 3, 1]))
    b.close(wait=5)
    # first run alone (nothing queued yet, no waiting); then 3+3+3 (a 4th 3 would pass 10), then 3+1
    assert model.batches == [1, 9, 4]
    for i, (r, n) in enumerate(zip(res[1:], [3, 3, 3, 3, 1])):
        np.testing.assert_array_equal(r["y"], np.full(n, 2 * i))


def test_one_bad_request_does_not_fail_its_batch_mates():
    model = GatedModel()
    b = Batcher(model, max_rows=64)

    async def go() -> list:
        first = b.submit({"x": np.ones(1, np.float32)}, 1)
        assert await asyncio.get_running_loop().run_in_executor(None, model.entered.wait, 120)
        good = b.submit({"x": np.ones(2, np.float32)}, 2)
        bad = b.submit({"x": -np.ones(1, np.float32)}, 1)
        model.gate.set()
        return await asyncio.gather(first, good, bad, return_exceptions=True)

    first, good, bad = asyncio.run(go())
    np.testing.assert_array_equal(good["y"], [2, 2])
    assert isinstance(bad, ValueError)
    b.close(wait=5)
    with pytest.raises(BatcherClosed):
        asyncio.run(_closed_submit(b))


async def _closed_submit(b: Batcher) -> None:
    b.submit({"x": np.ones(1)}, 1)


def test_oversized_request_runs_alone():
    model = GatedModel()
    model.gate.set()
    b = Batcher(model, max_rows=4)

    async def go() -> dict:
        return await b.submit({"x": np.ones(9, np.float32)}, 9)

    assert len(asyncio.run(go())["y"]) == 9
    b.close(wait=5)


F32 = TensorSpec("f", "float32", (-1,))
I64 = TensorSpec("i", "int64", (-1,))
S = TensorSpec("s", "string", (-1,))
B = TensorSpec("b", "bool", (-1,))


@pytest.mark.parametrize(
    "spec,values,expect",
    [
        (F32, [1, 2.5], np.array([1, 2.5], np.float32)),
        (F32, [1.0, None], np.array([1, np.nan], np.float32)),
        (I64, [1, 2.0], np.array([1, 2], np.int64)),
        (I64, [None, 3], np.array([-1, 3], np.int64)),
        (S, ["a", None], np.array(["a", ""], object)),
        (B, [True, False], np.array([True, False])),
        (F32, 3.0, np.array([3.0], np.float32)),
        (F32, [True, False], np.array([1, 0], np.float32)),  # true/false for numbers are 1/0 (#30 item 9)
        (F32, [0.5, True, None], np.array([0.5, 1, np.nan], np.float32)),
        (I64, [True, 7], np.array([1, 7], np.int64)),
    ],
)
def test_column_conversion(spec, values, expect):
    got = column(values, spec)
    assert got.dtype == expect.dtype
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize(
    "spec,values,text",
    [
        (F32, ["1.5"], "expects float32 numbers but got strings"),
        (F32, ["true"], "but got strings"),
        (F32, [1.0, "x"], "but got strings"),
        (I64, [1.5], "non-integral"),
        (I64, [2**63 + 5, 1], "out of range"),
        (S, [1, 2], "expects strings"),
        (S, ["a", 1], "value 1 is int"),
        (B, [1, 0], "expects booleans"),
        (B, [True, None], "cannot hold"),
        (F32, [[1.0], [2.0, 3.0]], "ragged"),
        (F32, [{"a": 1}], "value 0 is dict"),
    ],
)
def test_column_rejections_name_the_input_and_problem(spec, values, text):
    with pytest.raises(HTTPError) as e:
        column(values, spec)
    assert e.value.status == 400 and text in e.value.message and repr(spec.name) in e.value.message


def test_bytes_roundtrip_and_truncation():
    arr = np.array(["a", "", "héllo"], dtype=object)
    raw = encode_bytes(arr)
    assert list(decode_bytes(raw, 3, "s")) == ["a", "", "héllo"]
    with pytest.raises(HTTPError, match="ends after 2 of 3"):
        decode_bytes(raw[:12], 3, "s")
    with pytest.raises(HTTPError, match="3 BYTES elements but the data has only 5 bytes"):  # before allocating
        decode_bytes(raw[:5], 3, "s")
    with pytest.raises(HTTPError, match="extra bytes"):
        decode_bytes(raw + b"x", 3, "s")


def test_check_inputs(pkgs):
    pkg = read_package(pkgs["strings"])
    ok = {"x": np.ones(2, np.float32), "country": np.array(["a", "b"], object)}
    assert check_inputs(ok, pkg) == 2
    with pytest.raises(HTTPError, match="0 rows"):
        check_inputs({"x": np.ones(0, np.float32), "country": np.array([], object)}, pkg)


def test_read_package_errors(tmp_path, pkgs):
    with pytest.raises(RoostError, match="does not exist"):
        read_package(tmp_path / "nope")
    (tmp_path / "p").mkdir()
    with pytest.raises(RoostError, match="no model.onnx"):
        read_package(tmp_path / "p")
    (tmp_path / "p" / "model.onnx").write_bytes(b"x")
    (tmp_path / "p" / "signature.json").write_text("{")
    with pytest.raises(RoostError, match="not valid JSON"):
        read_package(tmp_path / "p")
    (tmp_path / "p" / "signature.json").write_text(
        json.dumps({"inputs": [{"name": "a", "dtype": "complex"}], "outputs": [{"name": "y"}]})
    )
    with pytest.raises(RoostError, match="unknown dtype 'complex'"):
        read_package(tmp_path / "p")
    pkg = read_package(pkgs["bc"])
    assert pkg.task == "binary" and len(pkg.inputs) == 30 and pkg.outputs[0].name == "probability"


def test_parse_spec(tmp_path, pkgs):
    assert parse_spec("churn@prod").kind == "alias" and parse_spec("churn@prod").name == "churn"
    assert (parse_spec("churn/3").kind, parse_spec("churn/3").name) == ("version", "churn")
    assert parse_spec("churn").kind == "latest"
    p = parse_spec(str(pkgs["bc"]))
    assert (p.kind, p.name) == ("path", "bc")
    assert parse_spec(f"x={pkgs['bc']}").name == "x"
    model_dir = tmp_path / "run1" / "model"
    model_dir.mkdir(parents=True)
    assert parse_spec(str(model_dir)).name == "run1"
    with pytest.raises(RoostError, match="rename it"):
        parse_spec(str(tmp_path / "a b"))


def test_signature_and_graph_must_agree(tmp_path, pkgs):
    import shutil

    from roost.serve.loader import load, parse_spec, resolve

    shutil.copytree(pkgs["strings"], tmp_path / "p")
    sig = json.loads((tmp_path / "p" / "signature.json").read_text())
    sig["inputs"][1]["name"] = "nation"
    (tmp_path / "p" / "signature.json").write_text(json.dumps(sig))
    with pytest.raises(RoostError, match="disagree"):
        load(resolve(parse_spec(str(tmp_path / "p"))))


def test_columns_block_path_keeps_nulls_and_refuses_overflow():
    """Float32 columns converted together: a column with a null (object block) still becomes float32 with NaN."""
    a, b = TensorSpec("a", "float32", (-1,)), TensorSpec("b", "float32", (-1,))
    got = columns([(a, [1.0, None]), (b, [2.0, 3.0])])
    assert [g.dtype for g in got] == [np.float32, np.float32]
    np.testing.assert_array_equal(got[0], np.array([1.0, np.nan], np.float32))
    np.testing.assert_array_equal(got[1], np.array([2.0, 3.0], np.float32))
    with pytest.raises(HTTPError, match="'b': values out of range for float32"):
        columns([(a, [1.0, 2.0]), (b, [2.0, 3.4e39])])


def test_redact_cuts_filesystem_paths_but_keeps_routes():
    from roost.serve.security import redact

    msg = "model package /home/ann/ws/.roost/models/churn/3 has no signature.json; see file:///tmp/x/y.onnx"
    assert redact(msg) == "model package …/3 has no signature.json; see …/y.onnx"
    for keep in ("no route /v2/models/a/b; use /v2/models/NAME[/versions/V]/infer", "see GET /openapi.json"):
        assert redact(keep) == keep
