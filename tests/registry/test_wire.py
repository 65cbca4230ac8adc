"""The client/server JSON (registry.wire): orjson's speed, the standard library's answers — every value reads back
as Python's json reads what Python's json writes, non-finite floats included (orjson alone writes them as null)."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roost.registry.wire import dumps, loads

SPECIAL = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1e308, 5e-324, 2**63, -(2**63), 2**70, None, True, ""]


def _std(value: Any) -> Any:
    """What the standard library makes of `value` (the reference): dumps then loads."""

    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, Path):
            return str(v)
        raise TypeError(type(v).__name__)

    return json.loads(json.dumps(value, default=default))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(SPECIAL)
    if kind == 1:
        return rng.uniform(-1e6, 1e6)
    if kind == 2:
        return rng.randrange(-(10**6), 10**6)
    if kind == 3:
        return "".join(rng.choice('aé"\\\n\u2603z') for _ in range(rng.randrange(6)))
    if kind == 4:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**12))
    if kind == 5:
        return Path(f"/tmp/x{rng.randrange(9)}")
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == 7:
        return {rng.choice(["k", "auc", 7, "é"]): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(3)))


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_equals_the_standard_library(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        value = {"runs": [_random_value(rng) for _ in range(5)]}
        assert _same(loads(dumps(value)), _std(value)), value


def test_non_finite_metrics_in_a_big_answer_survive() -> None:
    runs = [{"name": f"r{i}", "metrics": {"loss": 1.0 / (i + 1)}, "end_time": None} for i in range(2000)]
    runs[1234]["metrics"]["loss"] = math.inf
    back = loads(dumps({"runs": runs}))
    assert back["runs"][1234]["metrics"]["loss"] == math.inf and back["runs"][0]["end_time"] is None


def test_invalid_json_is_a_value_error_naming_the_position() -> None:
    with pytest.raises(ValueError, match="line 1 column 2"):
        loads(b"{nope")
    with pytest.raises(TypeError):
        dumps({"x": object()})


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890123",
        " -12345678901234567890123 ",
        "[1, 12345678901234567890123, 0.5]",
        '{"a":-98765432109876543210}',
        '{"a" :\n\t 98765432109876543210, "b": [[18446744073709551616]]}',
        "[0.00010001000100010001, 1e-12345678901234567890, 2.5E+12345678901234567890, 0.12345678901234567890123]",
        '["digits 12345678901234567890123 in text", 12345678901234567890123]',
    ],
)
def test_hand_written_numbers_read_as_the_standard_library_reads_them(text: str) -> None:
    """Texts no `dumps` wrote (any client's JSON): big integers stay exact, long fractions and exponents are floats."""
    assert _same(loads(text), json.loads(text)) and _same(loads(text.encode()), json.loads(text))


def test_a_batch_of_small_values_takes_the_fast_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5,000-point batch whose values print with 20+ fraction digits (1/7919 = 0.00012627857052658164...) is
    read by orjson, not the standard library (~4x slower: it was, since any 20 digits in a row sent it there)."""
    from roost.registry import wire

    body = dumps({"metrics": [["loss", 1.0 / (i + 7919), i, 1.7e9 + i / 1000] for i in range(5000)]})
    assert b"0.000126" in body
    slow: list[int] = []
    real = json.loads
    monkeypatch.setattr(wire.json, "loads", lambda raw, *a, **k: slow.append(1) or real(raw, *a, **k))
    back = loads(body)
    assert not slow and back == real(body)
