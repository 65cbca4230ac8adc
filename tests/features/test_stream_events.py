"""Decoding stream events into typed rows: every bad event gets a reason naming the field (no Redis needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from roost.errors import ConfigError
from roost.features.streaming.events import BadEvent, Schema, decode
from roost.features.streaming.sources import parse_source

S = Schema("v", {"user_id": "int64"}, {"n": "int32", "x": "float64", "ok": "bool", "s": "string"}, "ts", "ct")
GOOD = {"user_id": "7", "n": "-3", "x": "2.5", "ok": "true", "s": "a b", "ts": "2024-05-01T12:00:00.25Z"}


def test_flat_text_event_is_typed():
    row = decode({k.encode(): v.encode() for k, v in GOOD.items()}, S)  # redis-py gives bytes
    assert row == {
        "user_id": 7,
        "n": -3,
        "x": 2.5,
        "ok": True,
        "s": "a b",
        "ts": datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
        "ct": None,
    }
    assert decode({**GOOD, "x": "", "ok": "", "s": ""}, S) == {**row, "x": None, "ok": None, "s": ""}
    assert decode({**GOOD, "ts": "2024-05-01T14:00:00+02:00"}, S)["ts"] == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_json_event_is_typed_strictly():
    ev = {"user_id": 7, "n": 4.0, "x": 1, "ok": False, "s": "z", "ts": "2024-05-01T12:00:00Z", "extra": [1]}
    row = decode({"json": json.dumps(ev)}, S)
    assert (row["n"], row["x"], row["ok"]) == (4, 1.0, False)
    assert decode({"json": json.dumps({**ev, "x": None})}, S)["x"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user_id": None}, "missing join key 'user_id'"),
        ({"x": None}, "missing field 'x'"),
        ({"ts": None}, "missing event time 'ts'"),
        ({"n": "1.5"}, "n: '1.5' is not an integer (int32)"),
        ({"n": "2147483648"}, "n: 2147483648 is out of range for int32"),
        ({"x": "abc"}, "x: 'abc' is not a number (float64)"),
        ({"ok": "maybe"}, "ok: 'maybe' is not a bool"),
        ({"ts": "2024-05-01T12:00:00"}, "ts: '2024-05-01T12:00:00' has no UTC offset"),
        ({"ts": "tomorrow"}, "ts: 'tomorrow' is not an ISO 8601 time"),
        ({"user_id": "u7"}, "user_id: 'u7' is not an integer (int64)"),
    ],
)
def test_bad_flat_events_name_the_field(change, reason):
    ev = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(BadEvent) as e:
        decode(ev, S)
    assert str(e.value).startswith(reason)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"n": "4"}, "n: expected a number (int32), got '4'"),
        ({"n": 4.5}, "n: 4.5 is not a whole number (int32)"),
        ({"ok": 1}, "ok: expected true or false, got 1"),
        ({"s": 3}, "s: expected a string, got 3"),
        ({"x": True}, "x: expected a number (float64), got True"),
    ],
)
def test_bad_json_events_name_the_field(change, reason):
    ev = {"user_id": 7, "n": 4, "x": 1.5, "ok": True, "s": "z", "ts": "2024-05-01T12:00:00Z", **change}
    with pytest.raises(BadEvent) as e:
        decode({"json": json.dumps(ev)}, S)
    assert str(e.value) == reason
    with pytest.raises(BadEvent, match="json: not valid JSON"):
        decode({"json": "{nope"}, S)
    with pytest.raises(BadEvent, match="json: expected a JSON object"):
        decode({"json": "[1]"}, S)


def test_source_urls():
    assert parse_source("redis://h:6379/clicks").server == "redis://h:6379/0"
    u = parse_source("redis://:pw@h:6379/3/my%3Astream")
    assert (u.server, u.name) == ("redis://:pw@h:6379/3", "my:stream")
    k = parse_source("kafka://b1:9092,b2:9092/clicks")
    assert (k.scheme, k.server, k.name) == ("kafka", "b1:9092,b2:9092", "clicks")
    for bad in ("redis://h:6379", "http://h/s", "kafka://h:9092/a/b", "redis://h/1/2/3", "kafka://h:9092/t?x"):
        with pytest.raises(ConfigError):
            parse_source(bad)
    k = parse_source("kafka://b1:9092/clicks?session.timeout.ms=6000&security.protocol=SSL")
    assert (k.server, k.name) == ("b1:9092", "clicks")
    assert k.options == {"session.timeout.ms": "6000", "security.protocol": "SSL"}


def test_kafka_properties_roost_sets_itself_are_refused_in_the_url():
    pytest.importorskip("confluent_kafka")
    from roost.features.streaming.kafka_source import KafkaSource

    with pytest.raises(ConfigError, match="enable.auto.commit"):
        KafkaSource("127.0.0.1:9", "t", "g", "c", {"enable.auto.commit": "true"})
    with pytest.raises(ConfigError, match="no.such.property"):
        KafkaSource("127.0.0.1:9", "t", "g", "c", {"no.such.property": "1"})


def test_the_metrics_label_and_log_leave_out_secrets():
    from roost.features.streaming.consumer import source_label

    assert source_label("kafka://b:9092/t?sasl.password=s3cret&x=1") == "kafka://b:9092/t"
    assert source_label("redis://u:s3cret@h:6379/0/s") == "redis://u:***@h:6379/0/s"
