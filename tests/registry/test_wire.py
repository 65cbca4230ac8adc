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
