"""The tuning engine's Python API refuses what its HTTP service refuses, before anything is stored: a seed the
samplers reject at the first ask (10**30, -5), a lease that never expires (NaN, inf) and a batch ask too large to
sample in one transaction."""

from __future__ import annotations

import math

import pytest

from roost.errors import ConfigError
from roost.tune.engine import MAX_ASK, Engine

SPACE = {"x": {"uniform": [0.0, 1.0]}}


@pytest.fixture()
def engine(ws) -> Engine:
    return Engine()


@pytest.mark.parametrize("seed", [10**30, -5, 2**32, 1.5, "7", True])
def test_a_seed_out_of_the_samplers_range_is_refused_and_nothing_is_stored(engine, seed):
    before = len(engine.list_studies())
    with pytest.raises(ConfigError, match="seed"):
        engine.create_study(SPACE, seed=seed)
    assert len(engine.list_studies()) == before
    ok = engine.create_study(SPACE, seed=2**32 - 1)
    assert engine.ask(ok["id"])["trial"] is not None


@pytest.mark.parametrize("lease", [math.nan, math.inf, -1.0, 0, True])
def test_a_lease_that_never_expires_or_is_not_positive_is_refused(engine, lease):
    with pytest.raises(ConfigError, match="lease_s"):
        engine.create_study(SPACE, lease_s=lease)
    sid = engine.create_study(SPACE, seed=0)["id"]
    with pytest.raises(ConfigError, match="lease_s"):
        engine.ask_many(sid, 2, client_id="c", lease_s=lease)
    assert engine.study(sid)["trials"] == []


def test_a_batch_ask_is_bounded(engine):
    sid = engine.create_study(SPACE, seed=0)["id"]
    with pytest.raises(ConfigError, match=f"at most {MAX_ASK}"):
        engine.ask_many(sid, 10**9, client_id="c")
    assert engine.study(sid)["trials"] == []
    assert len(engine.ask_many(sid, 3, client_id="c")["trials"]) == 3
