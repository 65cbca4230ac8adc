"""The consumer's column-wise decoding equals the per-event decoder on every event it accepts, and hands every
uncertain batch to the per-event path (which names the bad event's reason)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from roost.features.definitions import arrow_type
from roost.features.streaming.columns import decode_columns
from roost.features.streaming.events import BadEvent, Schema, decode

SC = Schema(
    "v",
    {"user_id": "int64"},
    {"n": "int32", "x": "float64", "f": "float32", "ok": "bool", "s": "string", "t": "timestamp"},
    "event_time",
    "created_time",
)


def _reference(events: list[dict[Any, Any]]) -> pa.Table:
    """The per-event decoder's rows as a table of the view's types."""
    rows = [decode(e, SC) for e in events]
    types = {**SC.keys, **SC.fields, SC.event_time: "timestamp", "created_time": "timestamp"}
    return pa.table({c: pa.array([r[c] for r in rows], arrow_type(d)) for c, d in types.items()})


def _event(i: int, **over: str) -> dict[str, str]:
    e = {
        "user_id": str(i - 3),
        "n": str(-(2**31) if i == 0 else 2**31 - 1 if i == 1 else i * 7),
        "x": ["1.5", "-2", "3.", ".25", "1e-3", "-4.5E+2", "007"][i % 7],
        "f": "0.1",
        "ok": ["true", "FALSE", "1", "0", "t", "no", "Yes"][i % 7],
        "s": f"héllo {i}",
        "t": "2024-02-29 23:59:59.5-05:30",
        "event_time": ["2024-01-31T12:00:00Z", "2024-01-31T12:00:00.123456+02:00", "1999-12-31T23:59:59.1-00:00"][
            i % 3
        ],
        "created_time": "2024-01-31T12:00:01Z",
        "extra": "ignored",
    }
    e.update(over)
    return e


@pytest.mark.parametrize("as_bytes", [False, True])
def test_column_decode_equals_per_event_decode(as_bytes: bool) -> None:
    events: list[dict[Any, Any]] = [_event(i) for i in range(40)]
    if as_bytes:  # what redis-py returns without decode_responses
        events = [{k.encode(): v.encode() for k, v in e.items()} for e in events]
    got = decode_columns(events, SC)
    assert got is not None
    want = _reference(events)
    assert got.schema == want.schema
    assert got.equals(want)


@pytest.mark.parametrize(
    "over",
    [
        {"n": str(2**31)},  # int32 overflow: a BadEvent per event
        {"n": " 5"},  # spaces: the per-event path strips them
        {"n": "+5"},
        {"x": ""},  # empty: null
        {"x": "nan"},
        {"x": "1_000"},
        {"ok": "maybe"},
        {"user_id": ""},
        {"event_time": "2024-01-31T12:00:00"},  # naive
        {"event_time": "2024-01-31T24:00:00Z"},
        {"event_time": "2024-02-30T12:00:00Z"},
        {"event_time": "2024-01-31T12:00:00+24:00"},
        {"event_time": "2024-01-31T12:00Z"},
        {"created_time": ""},
        {"t": "yesterday"},
    ],
)
def test_uncertain_values_go_to_the_per_event_path(over: dict[str, str]) -> None:
    events = [_event(i) for i in range(5)] + [_event(5, **over)]
    assert decode_columns(events, SC) is None
    try:  # the per-event path decides: a value or the reason it is refused
        decode(events[-1], SC)
    except BadEvent as e:
        assert str(e)


def test_missing_field_json_and_deleted_events_go_to_the_per_event_path() -> None:
    lacking = _event(1)
    del lacking["s"]
    assert decode_columns([_event(0), lacking], SC) is None
    assert decode_columns([_event(0), {"json": '{"user_id": 1}'}], SC) is None
    assert decode_columns([_event(0), {}], SC) is None
    assert decode_columns([], SC) is None
