"""Hostile input to retention (`roost runs delete|archive|restore`, `roost gc`): LIKE wildcards in id prefixes,
ages and batch sizes too large for the clock or the database, injection through filters — each a RoostError that
changes nothing. Expected selections come from plain string checks over every run id, not from the code under test."""

from __future__ import annotations

import pytest

import roost
from roost.errors import RoostError
from roost.registry import api, retention


def _runs(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with roost.start_run(experiment="e", name=f"r{i}", params={"x": i}) as r:
            ids.append(r.id)
    return ids


def _active() -> set[str]:
    return {r["run_id"] for r in api.search_runs()}


@pytest.mark.parametrize("action", ["delete", "archive"])
@pytest.mark.parametrize("pattern", ["%", "_", "%%", "_%"])
def test_like_wildcards_are_not_prefixes(ws, action, pattern):
    # one run only: a wildcard that the database expands would pick it as "the unique match" and hide it
    (rid,) = _runs(1)
    assert not rid.startswith(pattern)  # hex ids: brute force says no run starts with these characters
    with pytest.raises(RoostError, match="not found"):
        getattr(api, f"{action}_runs")([pattern])
    assert _active() == {rid}


def test_underscore_inside_a_prefix_is_literal(ws):
    (rid,) = _runs(1)
    fake = rid[:3] + "_" + rid[4:8]  # matches rid under LIKE, but no id starts with this text
    with pytest.raises(RoostError, match="not found"):
        api.delete_runs([fake])
    assert _active() == {rid}
    assert api.delete_runs([rid[:8]]).run_ids == [rid]  # a real prefix still works


@pytest.mark.parametrize("age", ["99999999999999d", "99999999999w", "3000000d", "1" + "0" * 400 + "s"])
def test_ages_beyond_the_calendar_are_errors(ws, age):
    (rid,) = _runs(1)
    with pytest.raises(RoostError, match="age"):
        api.delete_runs(older_than=age)
    with pytest.raises(RoostError, match="age"):
        api.gc(older_than=age)
    assert _active() == {rid}


@pytest.mark.parametrize("size", [2**64, 10**30, "max+1"])
def test_gc_batch_size_too_large_is_an_error(ws, size):
    ids = _runs(3)
    api.delete_runs(ids)
    with pytest.raises(RoostError, match="batch size"):
        api.gc(batch_size=retention.GC_BATCH_MAX + 1 if size == "max+1" else int(size))
    assert {r["run_id"] for r in api.search_runs(stages=("deleted",))} == set(ids)  # nothing purged
    assert sorted(api.gc(batch_size=retention.GC_BATCH_MAX).run_ids) == sorted(ids)


@pytest.mark.parametrize(
    "bad",
    [
        "params.x = '1' OR 1=1",
        "params.x = '1'; DROP TABLE runs; --",
        "params.x = '1' UNION SELECT id FROM runs",
        'params."x" = 1',
        "nope.x = 1",
        "params.x IN ('1'",
        "params.x = ",
    ],
)
def test_filter_injection_is_a_syntax_error_that_changes_nothing(ws, bad):
    ids = _runs(3)
    with pytest.raises(RoostError):
        api.delete_runs(filter=bad)
    assert _active() == set(ids)


def test_cli_hostile_retention_exits_2(ws, cli):
    _runs(2)
    for args in (
        ["runs", "delete", "%"],
        ["runs", "delete", "--older-than", "99999999999w", "--yes"],
        ["gc", "--batch-size", str(2**64)],
        ["gc", "--older-than", "99999999999999d"],
    ):
        code, _, err = cli(*args)
        assert code == 2, (args, err)
