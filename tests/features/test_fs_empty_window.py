"""An empty materialisation window says so and keeps the watermark; a missing online value reads as such (#37)."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow.parquet as pq
from fs_helpers import TYPED_DEFS, write_defs, write_typed_data


def _data_end(root) -> str:
    """The last event time of the test data, read with pyarrow (independent of roost)."""
    t = max(pq.read_table(root / "data" / "events.parquet").column("event_time").to_pylist())
    return t.isoformat().replace("+00:00", "Z")


def test_empty_window_explains_and_keeps_the_watermark(fws):
    from roost.features import apply, list_definitions, materialize

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    apply()
    end = _data_end(fws.root)
    res = {r.view: r for r in materialize(end="2030-01-01T00:00:00Z", views=["activity", "derived"])}  # after the data
    r = res["activity"]
    assert r.rows == 0 and not r.watermark_moved
    assert "0 rows in [2029-12-31T18:00:00Z, 2030-01-01T00:00:00Z]" in r.note, r.note
    assert f"the data ends at {end}" in r.note and "pass --start/--end" in r.note
    assert r.as_dict()["data_end"] is not None and r.as_dict()["watermark_moved"] is False
    assert "activity" not in list_definitions()["watermark"]  # it never saw data: no watermark
    # so a later run up to the data's end needs no --start (before: "end ... is before view's watermark")
    again = {r.view: r for r in materialize(end=end, views=["activity", "derived"])}
    assert again["activity"].rows > 0 and again["activity"].note == ""
    assert list_definitions()["watermark"]["activity"]["watermark"].startswith(end.replace("Z", ""))


def test_empty_window_after_a_load_says_the_watermark_moved(fws):
    from roost.features import apply, list_definitions, materialize

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    apply()
    materialize(end=_data_end(fws.root))
    later = "2030-01-01T00:00:00Z"
    r = {r.view: r for r in materialize(end=later)}["activity"]  # values expire: the store now reflects `later`
    assert r.rows == 0 and r.watermark_moved
    assert "watermark moved to 2030-01-01T00:00:00Z" in r.note and "expired" in r.note
    assert list_definitions()["watermark"]["activity"]["watermark"].startswith("2030-01-01T00:00:00")


def test_cli_empty_window_and_no_value(fws, cli):
    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    assert cli("features", "apply")[0] == 0
    code, out, _ = cli("features", "materialize", "--end", "2030-01-01T00:00:00Z", "--view", "activity")
    assert code == 0
    assert "activity: 0 rows in [" in out and f"the data ends at {_data_end(fws.root)}" in out, out
    code, out, _ = cli("features", "materialize", "--end", "2030-01-01T00:00:00Z", "--view", "activity", "--json")
    assert json.loads(out)[0]["note"].startswith("activity: 0 rows in [")
    code, out, _ = cli("features", "get", "--view", "activity", "--entity", "user_id=1,2")
    assert code == 0 and out.count("no value") >= 2, out
    code, out, _ = cli("features", "get", "--view", "activity", "--entity", "user_id=1", "--json")
    row = json.loads(out)[0]
    assert row["user_id"] == 1 and row["n"] is None and row["score"] is None


def test_cli_get_marks_only_missing_entities(fws, cli):
    from fs_helpers import T0

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    assert cli("features", "apply")[0] == 0
    end = (T0 + timedelta(hours=47, minutes=50)).isoformat()
    assert cli("features", "materialize", "--end", end, "--view", "profile")[0] == 0
    code, out, _ = cli("features", "get", "--view", "profile", "--entity", "user_id=2,3")  # 2 in profiles.csv, 3 not
    assert code == 0 and "gold" not in out and "basic" in out and out.count("no value") == 1, out
