"""TF-Serving REST's binary form: a string input may be sent as {"b64": "<base64>"} (TF-Serving's JSON encoding of
bytes); roost's string inputs hold text, so it decodes to the UTF-8 text and answers as the plain string does."""

from __future__ import annotations

import base64

import orjson
from servekit import InProcess, mixed_package

from roost.serve.worker import create_app

ROW = {"f": 0.5, "d": 1.0, "i": 10, "b": True}


def _predict(ip: InProcess, body: object) -> tuple[int, dict]:
    status, _, out = ip.request("POST", "/v1/models/mixed:predict", orjson.dumps(body))
    return status, orjson.loads(out)


def test_b64_strings_answer_like_plain_strings_and_bad_ones_are_400s(tmp_path):
    ip = InProcess(create_app([str(mixed_package(tmp_path / "mixed"))]))
    try:
        texts = ["a", "b", "zzz", "é"]
        plain = _predict(ip, {"instances": [{**ROW, "s": t} for t in texts]})
        b64 = [{"b64": base64.b64encode(t.encode()).decode()} for t in texts]
        rows = _predict(ip, {"instances": [{**ROW, "s": v} for v in b64]})
        cols = _predict(ip, {"inputs": {**{k: [v] * 4 for k, v in ROW.items()}, "s": b64}})
        assert plain[0] == rows[0] == cols[0] == 200, (plain, rows, cols)
        assert rows[1]["predictions"] == plain[1]["predictions"] == cols[1]["outputs"]
        assert len(set(plain[1]["predictions"])) > 1  # the string matters to the answer (a = 1, b = 2, else 0)
        bad = {
            "not base64": ({"b64": "!!!"}, "base64"),
            "not UTF-8 text": ({"b64": base64.b64encode(b"\xff\xfe").decode()}, "UTF-8"),
            "another object": ({"text": "a"}, "b64"),
            "b64 not a string": ({"b64": 5}, "b64"),
        }
        for why, (value, word) in bad.items():
            status, out = _predict(ip, {"instances": [{**ROW, "s": value}]})
            assert status == 400 and "'s'" in out["error"] and word in out["error"], (why, out)
    finally:
        ip.close()
