"""TF-Serving REST, a model with ONE string input: a row may be a bare value, and TF-Serving's binary form
{"b64": "<base64>"} is such a value (an object holding only "b64" is a value, never a row of named inputs), in
"instances", in a list of "inputs" and as "inputs" itself; the answers equal the plain strings' answers."""

from __future__ import annotations

import base64
from pathlib import Path

import onnx
import orjson
import pytest
from onnx import TensorProto, helper
from servekit import InProcess, write_package

from roost.serve.worker import create_app

CODES = {"a": 1, "b": 2, "é": 3}  # what the graph maps each text to (anything else: 0)


def one_string_package(dest: Path) -> Path:
    """A package whose only input is the string 'text': y = code(text) as float32."""
    nodes = [
        helper.make_node(
            "LabelEncoder",
            ["text"],
            ["code"],
            domain="ai.onnx.ml",
            keys_strings=list(CODES),
            values_int64s=list(CODES.values()),
            default_int64=0,
        ),
        helper.make_node("Cast", ["code"], ["y"], to=TensorProto.FLOAT),
    ]
    g = helper.make_graph(
        nodes,
        "text",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.checker.check_model(m)
    inputs = [{"name": "text", "dtype": "string", "shape": [-1]}]
    outputs = [{"name": "y", "dtype": "float32", "shape": [-1]}]
    return write_package(dest, m, inputs, outputs, "regression", None, {"framework": "onnx"})


def b64(text: str) -> dict[str, str]:
    """TF-Serving's JSON form of the UTF-8 bytes of text."""
    return {"b64": base64.b64encode(text.encode()).decode()}


@pytest.fixture(scope="module")
def ip(tmp_path_factory: pytest.TempPathFactory):
    app = InProcess(create_app([str(one_string_package(tmp_path_factory.mktemp("pkg") / "text"))]))
    yield app
    app.close()


def predict(ip: InProcess, body: object) -> tuple[int, dict]:
    status, _, out = ip.request("POST", "/v1/models/text:predict", orjson.dumps(body))
    return status, orjson.loads(out)


TEXTS = ["a", "b", "zzz", "é", ""]


def test_b64_values_answer_like_plain_strings(ip):
    want = [float(CODES.get(t, 0)) for t in TEXTS]  # the graph's own mapping, independent of the decoder
    status, plain = predict(ip, {"instances": TEXTS})
    assert status == 200 and plain["predictions"] == want, plain
    enc = [b64(t) for t in TEXTS]
    mixed = [enc[i] if i % 2 else t for i, t in enumerate(TEXTS)]
    for body, key in [
        ({"instances": enc}, "predictions"),  # rows that are b64 values
        ({"instances": mixed}, "predictions"),  # bare strings and b64 values mixed
        ({"instances": [{"text": v} for v in enc]}, "predictions"),  # named rows holding b64 values
        ({"inputs": enc}, "outputs"),  # columnar: a list of b64 values
        ({"inputs": {"text": enc}}, "outputs"),
    ]:
        status, out = predict(ip, body)
        assert status == 200 and out[key] == want, (body, out)
    for t in ("é", "zzz"):  # V1 columnar: "inputs" is itself the one value (TF-Serving's base64 object)
        status, out = predict(ip, {"inputs": b64(t)})
        status_plain, out_plain = predict(ip, {"inputs": t})
        assert status == status_plain == 200 and out["outputs"] == out_plain["outputs"] == [CODES.get(t, 0)], out


HOSTILE = {
    "not base64": ({"b64": "!!!"}, "base64"),
    "not UTF-8 text": ({"b64": base64.b64encode(b"\xff\xfe").decode()}, "UTF-8"),
    "an object with other keys": ({"b64": b64("a")["b64"], "x": 1}, "b64"),
    "b64 not a string": ({"b64": 5}, "b64"),
}


@pytest.mark.parametrize("why", list(HOSTILE))
def test_bad_b64_values_are_400s_naming_the_input(ip, why):
    value, word = HOSTILE[why]
    for body in (
        {"instances": [value]},
        {"instances": ["a", value]},
        {"instances": [b64("a"), value]},
        {"inputs": [value]},
        {"inputs": value},
    ):
        status, out = predict(ip, body)
        assert status == 400 and "'text'" in out["error"] and word in out["error"], (why, body, out)


def test_rows_of_named_inputs_still_say_which_input_is_unknown(ip):
    status, out = predict(ip, {"instances": [{"txt": "a"}]})
    assert status == 400 and "unknown input 'txt'" in out["error"], out
    status, out = predict(ip, {"instances": [{"text": "a"}, b64("a")]})  # named rows, then a value
    assert status == 400 and "instance 1" in out["error"], out
