"""Stream events to feature rows: the view's schema, and decoding one event's fields with a reason when it is bad."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from roost.errors import NotFoundError

__all__ = ["BadEvent", "Event", "Schema", "decode", "schema_for"]

_INT = re.compile(r"^[+-]?\d+$")
_BOUNDS = {"int64": 2**63, "int32": 2**31}
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


class BadEvent(ValueError):
    """An event that cannot become a feature row; the message is the reason written to the dead-letter stream."""


@dataclass(frozen=True)
class Event:
    """One delivered message: its id in the stream (Redis entry id, Kafka partition:offset) and its fields."""

    id: str
    fields: Mapping[str, Any] | None  # None: the entry was deleted from the stream after delivery


@dataclass(frozen=True)
class Schema:
    """What an event of one view must carry: join keys, fields (with dtypes) and the source's time columns."""

    view: str
    keys: dict[str, str]
    fields: dict[str, str]
    event_time: str
    created_time: str | None

    def columns(self) -> list[str]:
        """Row columns in order: keys, fields, event time, created time."""
        return [*self.keys, *self.fields, self.event_time, *([self.created_time] if self.created_time else [])]


def schema_for(view: str) -> Schema:
    """The registered schema of `view` (run `roost features apply` first), else NotFoundError naming it."""
    from roost.errors import closest
    from roost.features import repo

    views = repo.list_all("view")
    spec = views.get(view)
    if spec is None:
        near = closest(view, list(views))
        raise NotFoundError(
            f"no feature view {view!r} is registered",
            hint=(f"did you mean {near!r}? " if near else "") + "run `roost features apply` first",
        )
    src = repo.get("source", spec["source"]) or {}
    return Schema(
        view,
        dict(spec["join_keys"]),
        dict(spec["fields"]),
        src.get("event_time") or "event_time",
        src.get("created_time"),
    )


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _time(name: str, v: Any) -> datetime:
    if isinstance(v, datetime):
        t = v
    else:
        s = _text(v).strip()
        try:
            t = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
        except ValueError:
            raise BadEvent(f"{name}: {s[:60]!r} is not an ISO 8601 time (e.g. 2024-01-31T12:00:00.5Z)") from None
    if t.tzinfo is None:
        raise BadEvent(f"{name}: {_text(v)[:60]!r} has no UTC offset (write 2024-01-31T12:00:00Z)")
    return t.astimezone(UTC)


def _value(name: str, dtype: str, v: Any, typed: bool) -> Any:
    """One value of `dtype` from an event (`typed`: a JSON value, else Redis text); None for null."""
    if v is None:
        return None
    if dtype == "timestamp":
        return _time(name, v)
    if typed:
        if dtype == "string":
            if not isinstance(v, str):
                raise BadEvent(f"{name}: expected a string, got {v!r}")
            return v
        if dtype == "bool":
            if not isinstance(v, bool):
                raise BadEvent(f"{name}: expected true or false, got {v!r}")
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise BadEvent(f"{name}: expected a number ({dtype}), got {v!r}")
        if dtype in _BOUNDS:
            if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
                raise BadEvent(f"{name}: {v!r} is not a whole number ({dtype})")
            v = int(v)
        else:
            return None if isinstance(v, float) and math.isnan(v) else float(v)
    else:
        s = _text(v)
        if dtype == "string":
            return s
        s = s.strip()
        if s == "":
            return None
        if dtype == "bool":
            if s.lower() not in _TRUE | _FALSE:
                raise BadEvent(f"{name}: {s[:60]!r} is not a bool (true/false/1/0)")
            return s.lower() in _TRUE
        if dtype in _BOUNDS:
            if not _INT.match(s):
                raise BadEvent(f"{name}: {s[:60]!r} is not an integer ({dtype})")
            v = int(s)
        else:
            try:
                f = float(s)
            except ValueError:
                raise BadEvent(f"{name}: {s[:60]!r} is not a number ({dtype})") from None
            return None if math.isnan(f) else f
    bound = _BOUNDS[dtype]
    if not -bound <= v < bound:
        raise BadEvent(f"{name}: {v} is out of range for {dtype}")
    return v


def decode(raw: Mapping[Any, Any], schema: Schema) -> dict[str, Any]:
    """A feature row (keys, fields, event time as aware UTC datetime, created time) from one event's fields.

    Either flat text fields (Redis `XADD s * user_id 7 clicks 3 event_time 2024-01-31T12:00:00Z`; an empty value
    is null for non-string fields) or one `json` field / a JSON object holding typed values. Extra fields are
    ignored; a missing key, field or event time, or a value of the wrong type, raises BadEvent with the reason."""
    fields = {_text(k): v for k, v in raw.items()}
    typed = False
    if "json" in fields and len(fields) == 1:
        try:
            obj = json.loads(_text(fields["json"]))
        except ValueError as e:
            raise BadEvent(f"json: not valid JSON ({e})") from None
        if not isinstance(obj, dict):
            raise BadEvent("json: expected a JSON object")
        fields, typed = obj, True
    row: dict[str, Any] = {}
    for name, dtype in schema.keys.items():
        if fields.get(name) is None:
            raise BadEvent(f"missing join key {name!r}")
        if not typed and dtype == "string":
            row[name] = _text(fields[name])
        else:
            row[name] = _value(name, dtype, fields[name], typed)
        if row[name] is None:
            raise BadEvent(f"missing join key {name!r}")
    for name, dtype in schema.fields.items():
        if name not in fields:
            raise BadEvent(f"missing field {name!r}")
        row[name] = _value(name, dtype, fields[name], typed)
    if fields.get(schema.event_time) in (None, "", b""):
        raise BadEvent(f"missing event time {schema.event_time!r}")
    row[schema.event_time] = _time(schema.event_time, fields[schema.event_time])
    if schema.created_time:
        ct = fields.get(schema.created_time)
        row[schema.created_time] = None if ct in (None, "", b"") else _time(schema.created_time, ct)
    return row
