"""Hostile request bodies for the serving fuzz suite: a hand list per protocol and a seeded random generator.

Models they target (see servekit): `strings` (x FP32 [-1], country BYTES [-1]), `mixed` (f FP32, d FP64, i INT64,
b BOOL, s BYTES, all [-1]), `column` (x FP32 [-1, 1]) and `iris` (four FP32 [-1] inputs: the block path that
converts many float32 columns in one numpy call).
"""

from __future__ import annotations

import gzip
import json
import random
import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Req:
    """One HTTP request: method, path, body, headers."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def short(self) -> str:
        """For failure messages."""
        return f"{self.method} {self.path} {self.headers} {self.body[:300]!r}"


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def v2_json(model: str, inputs: Any, **extra: Any) -> Req:
    """A V2 JSON inference request."""
    return Req("POST", f"/v2/models/{model}/infer", _j({"inputs": inputs, **extra}))


def v2_binary(model: str, inputs: Any, blob: bytes, header_len: int | str | None = None, **extra: Any) -> Req:
    """A V2 request with the binary tensor extension (JSON header, then raw tensor bytes)."""
    head = _j({"inputs": inputs, **extra})
    hl = str(len(head)) if header_len is None else str(header_len)
    return Req(
        "POST",
        f"/v2/models/{model}/infer",
        head + blob,
        {"inference-header-content-length": hl, "content-type": "application/octet-stream"},
    )


def tf(model: str, doc: Any) -> Req:
    """A TF-Serving REST :predict request."""
    return Req("POST", f"/v1/models/{model}:predict", doc if isinstance(doc, bytes) else _j(doc))


IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X1 = {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}
C1 = {"name": "country", "datatype": "BYTES", "shape": [1], "data": ["a"]}


def _bytes_input(shape: Any, size: int) -> dict[str, Any]:
    return {"name": "country", "datatype": "BYTES", "shape": shape, "parameters": {"binary_data_size": size}}


def hand_list() -> list[Req]:
    """Known-hostile bodies for V2 JSON, V2 binary and TF-Serving REST (every one must get a 4xx)."""
    out: list[Req] = []
    # V2 binary: declared shapes that are not backed by data (the 208-byte request first)
    for shape in ([300_000_000], [10**12], [4611686018427387904, 0], [1] * 65, [2**64], [2**31, 2**31], [-1]):
        out.append(v2_binary("strings", [X1, _bytes_input(shape, 8)], struct.pack("<I", 4) + b"abcd"))
    fp = {"name": "x", "datatype": "FP32", "parameters": {"binary_data_size": 8}}
    for shape in ([10**12], [3], [1, 1, 1, 1, 1, 1, 1, 1, 1], [2**62, 4]):
        out.append(v2_binary("strings", [{**fp, "shape": shape}, C1], b"\0" * 8))
    out.append(v2_binary("strings", [{**fp, "shape": [2]}, C1], struct.pack("<2f", 1.0, float("inf"))))
    out.append(v2_binary("strings", [_bytes_input([1], 8), X1], struct.pack("<I", 2**32 - 1) + b"abcd"))
    out.append(v2_binary("strings", [_bytes_input([1], 5), X1], struct.pack("<I", 1) + b"\xff"))
    for hl in (-1, 10**20, "abc", 0, ""):
        out.append(v2_binary("strings", [X1, C1], b"xyz", header_len=hl))
    out.append(v2_binary("strings", [X1, _bytes_input([1], 2**62)], b""))
    # V2 JSON: shapes, values, types
    for shape in ([10**12], [4611686018427387904, 0], [1] * 65, [1.5], ["1"], None, {}, [True], [-5], []):
        out.append(v2_json("strings", [X1, {**C1, "shape": shape}]))
    for value in (3.4e39, -3.4e39, 1e308, "1.0", "true", {"a": 1}, [1.0, 2.0]):  # (true is 1: #30 item 9)
        out.append(v2_json("strings", [{**X1, "data": [value]}, C1]))
    mixed = [
        {"name": n, "datatype": t, "shape": [1], "data": [v]}
        for n, t, v in [("f", "FP32", 1.0), ("d", "FP64", 1.0), ("b", "BOOL", True), ("s", "BYTES", "a")]
    ]
    for value in (2**70, -(2**70), 2**64, 2**63, 1.5, 1e308, "1", "true"):
        out.append(v2_json("mixed", [*mixed, {"name": "i", "datatype": "INT64", "shape": [1], "data": [value]}]))
    out.append(v2_json("mixed", [*mixed[:2], {**mixed[2], "data": [None]}, mixed[3]]))
    for dt in ("FP16", "UINT8", "", None, 7, "BYTES", "INT64"):
        out.append(v2_json("strings", [{**X1, "datatype": dt}, C1]))
    out += [
        v2_json("strings", None),
        v2_json("strings", []),
        v2_json("strings", [X1, X1, C1]),
        v2_json("strings", [X1, C1, {"name": "zz", "datatype": "FP32", "shape": [1], "data": [1]}]),
        v2_json("strings", [X1, {**C1, "data": [[["a"], ["b"]]]}]),
        v2_json("strings", [X1, {**C1, "data": ["a", ["b"]]}]),
        v2_json("strings", [X1, C1], outputs=[{"name": "nope"}]),
        v2_json("strings", [X1, C1], outputs="prediction"),
        v2_json("column", [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]),
        v2_json("column", [{"name": "x", "datatype": "FP32", "shape": [0], "data": []}]),
        v2_json("nomodel", [X1]),
        Req("POST", "/v2/models/strings/infer", b"[" * 100_000),
        Req("POST", "/v2/models/strings/infer", b'{"inputs": [' + b"1," * 200_000 + b"1]}"),
        Req("POST", "/v2/models/strings/infer", b"\xff\xfe{}"),
        Req("POST", "/v2/models/strings/infer", gzip.compress(b" " * (8 << 20)), {"content-encoding": "gzip"}),
        Req("POST", "/v2/models/strings/infer", b"not gzip", {"content-encoding": "gzip"}),
        Req("POST", "/v2/models/strings/infer", b"{}", {"content-encoding": "br"}),
    ]
    # TF-Serving REST
    for doc in (
        {"instances": [{"x": 3.4e39, "country": "a"}]},
        {"instances": [{"x": 1.0, "country": 5}]},
        {"instances": [{"x": 1.0}]},
        {"instances": [{"x": 1.0, "country": "a"}, {"x": 1.0}]},
        {"instances": [{"x": 1.0, "country": "a"}, 5]},
        {"instances": []},
        {"instances": {}},
        {"instances": [[1.0]]},
        {"inputs": {"x": [[[[1.0]]]], "country": ["a"]}},
        {"inputs": {"x": [1.0, 2.0], "country": ["a"]}},
        {"inputs": {"x": [1e39], "country": ["a"]}},
        {"inputs": [1, 2]},
        {"inputs": {"x": [1], "country": ["a"]}, "instances": []},
        {"signature_name": "other", "instances": [{"x": 1.0, "country": "a"}]},
        {"instances": [{"i": 2**70, "f": 1, "d": 1, "b": True, "s": "a"}]},
        [],
        "x",
    ):
        out.append(tf("strings", doc))
    out.append(tf("mixed", {"instances": [{"i": 2**70, "f": 1, "d": 1, "b": True, "s": "a"}]}))
    out.append(tf("mixed", {"inputs": {"i": [1], "f": [1], "d": [1e308], "b": [None], "s": ["a"]}}))
    out.append(tf("column", {"instances": [[1.0, 2.0]]}))
    out.append(tf("column", b'{"instances": [1e999]}'))
    out.append(Req("POST", "/v1/models/strings:classify", b"{}"))
    out.append(Req("POST", "/v1/models/strings/labels/prod:predict", b"{}"))
    out.append(Req("POST", "/v1/models/strings/versions/9:predict", b"{}"))
    # methods, routes, admin
    out += [
        Req("PUT", "/admin/status"),
        Req("GET", "/admin/reload"),
        Req("POST", "/admin/reload?force=maybe"),
        Req("DELETE", "/v2/models/strings"),
        Req("GET", "/v2/models/strings/infer"),
        Req("GET", "/v2/models/%00/ready"),
        Req("GET", "/" + "a/" * 2000),
        Req("GET", "/v1/models/strings:predict"),
    ]
    return out


_FLOATS = [0.0, -0.0, 1.5, 5e-324, 1e308, -1e308, 3.4e38, 3.5e38, 3.4e39, 1e-45, 2.0**63, -(2.0**63)]
_INTS = [0, 1, -1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**70, -(2**70)]
_STRS = ["", "a", "b", "é", "\x00", "x" * 300, "\ud7ff", "1e999"]
_SHAPES: list[Any] = [
    [1],
    [2],
    [2, 1],
    [1, 2],
    [0],
    [],
    [10**12],
    [2**63],
    [2**64],
    [4611686018427387904, 0],
    [0, 4611686018427387904],
    [16_777_217],
    [4096, 4097],
    [-1],
    [1.5],
    ["2"],
    None,
    {},
    [True],
]


class Generator:
    """Seeded random hostile requests: mutated valid requests of all three protocols plus raw garbage."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def value(self, depth: int = 0) -> Any:
        """A random JSON value biased towards the edges of each type."""
        k = self.r.random()
        if k < 0.3:
            return self.r.choice(_FLOATS)
        if k < 0.5:
            return self.r.choice(_INTS)
        if k < 0.65:
            return self.r.choice(_STRS)
        if k < 0.72:
            return self.r.choice([True, False, None])
        if k < 0.85 and depth < 4:
            return [self.value(depth + 1) for _ in range(self.r.randint(0, 3))]
        if k < 0.9 and depth < 3:
            return {self.r.choice(["a", "x", "name"]): self.value(depth + 1)}
        return self.r.uniform(-1e6, 1e6)

    def data(self, n: int) -> list[Any]:
        """A list of n values: uniform-type (usual) or mixed."""
        if self.r.random() < 0.6:
            gen = self.r.choice([lambda: self.r.choice(_FLOATS), lambda: self.r.choice(_INTS), self.value])
            return [gen() for _ in range(n)]
        return [self.value() for _ in range(n)]

    def shape(self, n: int) -> Any:
        """A shape: usually consistent with n, often not."""
        if self.r.random() < 0.5:
            return [n]
        if self.r.random() < 0.3:
            return [n, 1]
        if self.r.random() < 0.1:
            return [1] * self.r.randint(2, 70)
        return self.r.choice(_SHAPES)

    def tensor(self, name: str, datatype: str) -> dict[str, Any]:
        """One V2 input entry, maybe mangled."""
        n = self.r.randint(0, 4)
        t: dict[str, Any] = {"name": name, "datatype": datatype, "shape": self.shape(n), "data": self.data(n)}
        if self.r.random() < 0.15:
            t["datatype"] = self.r.choice(["FP32", "FP64", "INT64", "INT32", "BOOL", "BYTES", "FP16", "", None])
        if self.r.random() < 0.05:
            t["name"] = self.r.choice(["zz", "", None, 5, name])
        if self.r.random() < 0.05:
            del t[self.r.choice(list(t))]
        return t

    def v2_inputs(self, model: str) -> list[Any]:
        """The input list of a V2 request for `model`, some entries dropped, duplicated or garbage."""
        spec = {
            "strings": [("x", "FP32"), ("country", "BYTES")],
            "mixed": [("f", "FP32"), ("d", "FP64"), ("i", "INT64"), ("b", "BOOL"), ("s", "BYTES")],
            "column": [("x", "FP32")],
            "iris": [(c, "FP32") for c in IRIS],
        }[model]
        inputs: list[Any] = [self.tensor(n, t) for n, t in spec]
        if self.r.random() < 0.1 and inputs:
            inputs.pop(self.r.randrange(len(inputs)))
        if self.r.random() < 0.05:
            inputs.append(self.r.choice([inputs[0] if inputs else 1, self.value(), {"name": "zz"}]))
        return inputs

    def binary(self, model: str) -> Req:
        """A V2 binary request: some inputs as raw bytes with random declared sizes and contents."""
        inputs = self.v2_inputs(model)
        blob = b""
        for t in inputs:
            if not isinstance(t, dict) or self.r.random() < 0.4:
                continue
            n = self.r.choice([0, 1, 2, 3, 8, 16])
            if t.get("datatype") == "BYTES":
                raw = b"".join(struct.pack("<I", self.r.choice([1, 3, 2**31])) + b"abc" for _ in range(n))
            else:
                raw = bytes(self.r.getrandbits(8) for _ in range(n * self.r.choice([1, 4, 8])))
                if self.r.random() < 0.3:
                    raw = struct.pack(f"<{n}f", *[self.r.choice([float("inf"), float("nan"), 1.0])] * n)
            t.pop("data", None)
            t["parameters"] = {"binary_data_size": self.r.choice([len(raw), len(raw), len(raw) + 1, 0, 2**40])}
            blob += raw
        hl: int | str | None = None
        if self.r.random() < 0.1:
            hl = self.r.choice([-1, 0, 1, 10**9, "x"])
        return v2_binary(model, inputs, blob, header_len=hl)

    def tf(self, model: str) -> Req:
        """A TF-Serving REST request, row or columnar format, maybe mangled."""
        names = {"strings": ["x", "country"], "mixed": ["f", "d", "i", "b", "s"], "column": ["x"], "iris": IRIS}[model]
        n = self.r.randint(0, 3)
        if self.r.random() < 0.5:
            rows = [{k: self.value() for k in names if self.r.random() < 0.95} for _ in range(n)]
            if model == "column" and self.r.random() < 0.5:
                rows = [self.value() for _ in range(n)]  # type: ignore[misc]
            doc: Any = {"instances": rows}
        else:
            doc = {"inputs": {k: self.data(n) if self.r.random() < 0.8 else self.value() for k in names}}
        if self.r.random() < 0.05:
            doc["signature_name"] = self.value()
        if self.r.random() < 0.03:
            doc = self.value()
        return tf(model, doc)

    def garbage(self) -> Req:
        """Random bytes, methods and paths."""
        path = self.r.choice(
            ["/v2/models/strings/infer", "/v1/models/mixed:predict", "/admin/reload", "/v2/models/x/versions/1/infer"]
        )
        body = bytes(self.r.getrandbits(8) for _ in range(self.r.randint(0, 64)))
        headers = {}
        if self.r.random() < 0.2:
            headers["content-encoding"] = self.r.choice(["gzip", "deflate", "zstd"])
        return Req(self.r.choice(["POST", "POST", "GET", "PUT"]), path, body, headers)

    def request(self) -> Req:
        """One random request."""
        model = self.r.choice(["strings", "mixed", "column", "iris"])
        k = self.r.random()
        if k < 0.4:
            return v2_json(model, self.v2_inputs(model))
        if k < 0.65:
            return self.binary(model)
        if k < 0.95:
            return self.tf(model)
        return self.garbage()
