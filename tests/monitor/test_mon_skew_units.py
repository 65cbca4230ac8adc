"""Skew's staleness test compares request and online event times as instants, whatever their unit or type.

Logs written by something other than roost's server (or re-written by pandas) can hold `_ts` and `_fs_event_time.V`
as timestamps of other units (ns, ms), naive or in another zone, ISO strings, or epoch numbers. The planted scenario
of test_mon_skew (user 1 stale, 2 expired, 3 missing, 4 tampered) must read the same in every encoding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skew_scenario import MIN, PLANTED_ROWS, REFS, T0, concat, serve_rows, setup_view

PLANTED = {0: "ok", 1: "stale_online", 2: "extra_online", 3: "missing_online", 4: "value_mismatch"}
US = pa.timestamp("us", tz="UTC")


def _epoch(unit: float, typ: Any = pa.int64()) -> Callable[[list[Any]], Any]:
    def f(ts: list[Any]) -> Any:
        return pa.array([None if t is None else (t.timestamp() * unit) for t in ts], pa.float64()).cast(typ)

    return f


def _ts(typ: Any) -> Callable[[list[Any]], Any]:
    return lambda ts: pa.array(ts, US).cast(typ)


def _iso(fmt: str) -> Callable[[list[Any]], Any]:
    return lambda ts: pa.array([None if t is None else t.strftime(fmt) for t in ts], pa.string())


ENCODINGS = {
    "ns": _ts(pa.timestamp("ns", tz="UTC")),  # pandas' datetime64[ns, UTC]
    "ms": _ts(pa.timestamp("ms", tz="UTC")),
    "s_naive": _ts(pa.timestamp("s")),  # naive: UTC, as everywhere in roost
    "us_berlin": _ts(pa.timestamp("us", tz="Europe/Berlin")),
    "epoch_s": _epoch(1.0),
    "epoch_ms": _epoch(1e3),
    "epoch_s_float": _epoch(1.0, pa.float64()),
    "iso_z": _iso("%Y-%m-%dT%H:%M:%S.%fZ"),
    "iso_offset": _iso("%Y-%m-%d %H:%M:%S%z"),
}


def _planted_log(ws: Any, logs: Path, ts_enc: str | None, et_enc: str | None) -> Path:
    """test_mon_skew's planted scenario, with `_ts` and `_fs_event_time.uv` written in the given encodings."""
    from roost.features import materialize

    t1, t2 = T0 + 40 * MIN, T0 + 60 * MIN
    setup_view(ws.root, PLANTED_ROWS)
    materialize(start=T0 - 24 * 60 * MIN, end=t1)
    v1 = serve_rows([1, 2, 3, 4], t2, version="1")
    v1["score"][3] += 0.25
    cols = concat([v1, serve_rows([0], t2, version="2", first_request=100)])
    types = {"user_id": pa.int64(), "clicks": pa.float32(), "score": pa.float32(), "cat": pa.string()}
    arrays = {k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items() if not k.startswith("_")}
    arrays["_request_id"] = pa.array(cols["_request_id"])
    arrays["_version"] = pa.array(cols["_version"])
    arrays["_ts"] = ENCODINGS[ts_enc](cols["_ts"]) if ts_enc else pa.array(cols["_ts"], US)
    et = cols["_fs_event_time.uv"]
    arrays["_fs_event_time.uv"] = ENCODINGS[et_enc](et) if et_enc else pa.array(et, US)
    tbl = pa.table(arrays).replace_schema_metadata(
        {"roost.feature_refs": json.dumps(REFS), "roost.entities": json.dumps(["user_id"])}
    )
    (logs / "m").mkdir(parents=True, exist_ok=True)
    pq.write_table(tbl, logs / "m" / "000000-1-00000.parquet")
    return logs


def _categories(rep: Any, feature: str) -> dict[int, str]:
    f = rep.feature(feature)
    got = {ex["entity"]["user_id"]: c for c, exs in f.examples.items() for ex in exs}
    return {u: got.get(u, "ok") for u in range(5)}


@pytest.mark.parametrize(
    ("ts_enc", "et_enc"),
    [
        (None, "ns"),
        (None, "ms"),
        (None, "s_naive"),
        (None, "us_berlin"),
        ("ms", None),
        ("s_naive", "ns"),
        (None, "epoch_s"),
        (None, "epoch_ms"),
        ("epoch_ms", "epoch_s"),
        (None, "epoch_s_float"),
        (None, "iso_z"),
        ("iso_offset", "iso_z"),
    ],
)
def test_planted_categories_hold_in_every_time_encoding(ws: Any, tmp_path: Path, ts_enc: Any, et_enc: Any) -> None:
    """With ns event times and us request times the stale user read as a value mismatch (ns > us as numbers); with
    epoch-second ints the tampered user read as stale (the seconds were taken for microseconds: 1970)."""
    from roost.monitor.skew import skew

    rep = skew(_planted_log(ws, tmp_path / "logs", ts_enc, et_enc), profiles=False)
    assert rep.rows_compared == 5
    assert _categories(rep, "score") == PLANTED
    ex = rep.feature("score").examples["value_mismatch"][0]
    assert ex["online_event_time"].startswith("2024-03-10T12:39") and ex["request_time"].startswith("2024-03-10T13:00")
    window = skew(tmp_path / "logs", since="2024-03-10T12:59", until=T0 + 61 * MIN, profiles=False)
    assert window.rows_compared == 5


def test_integer_times_in_no_single_unit_are_refused_naming_the_column(ws: Any, tmp_path: Path) -> None:
    """Epoch seconds and milliseconds mixed in one column cannot be read as one unit: a RoostError, not a guess."""
    from roost.errors import RoostError
    from roost.monitor.skew import skew

    logs = _planted_log(ws, tmp_path / "logs", None, "epoch_s")
    f = logs / "m" / "000000-1-00000.parquet"
    tbl = pq.read_table(f)
    et = tbl.column("_fs_event_time.uv").to_pylist()
    et[0] = et[0] * 1000  # one row in milliseconds
    i = tbl.schema.get_field_index("_fs_event_time.uv")
    pq.write_table(tbl.set_column(i, "_fs_event_time.uv", pa.array(et, pa.int64())), f)
    with pytest.raises(RoostError, match=r"_fs_event_time\.uv") as err:
        skew(logs, profiles=False)
    assert "int64" in err.value.message and "timestamp" in err.value.message


def test_unparseable_time_strings_are_refused_naming_the_column(ws: Any, tmp_path: Path) -> None:
    from roost.errors import RoostError
    from roost.monitor.skew import skew

    logs = _planted_log(ws, tmp_path / "logs", None, "iso_z")
    f = logs / "m" / "000000-1-00000.parquet"
    tbl = pq.read_table(f)
    et = tbl.column("_fs_event_time.uv").to_pylist()
    et[0] = "yesterday"
    i = tbl.schema.get_field_index("_fs_event_time.uv")
    pq.write_table(tbl.set_column(i, "_fs_event_time.uv", pa.array(et, pa.string())), f)
    with pytest.raises(RoostError, match=r"_fs_event_time\.uv.*'yesterday'"):
        skew(logs, profiles=False)
