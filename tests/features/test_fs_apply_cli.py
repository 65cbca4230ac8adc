"""`apply` diffs and the `roost features` CLI end to end."""

from __future__ import annotations

import json

from fs_helpers import TYPED_DEFS, write_defs, write_typed_data


def test_apply_diff_added_changed_removed(fws):
    from roost.features import apply, list_definitions, materialize
    from roost.features.online_stores import open_online_store

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    d = apply(dry_run=True)
    assert "activity" in d.added["view"] and not list_definitions()["view"]  # dry run registers nothing
    d = apply()
    assert sorted(d.added["view"]) == ["activity", "by_region", "derived", "profile", "pyview"]
    assert sorted(d.added["entity"]) == ["acct", "user"] and sorted(d.added["source"]) == ["events", "profiles"]
    assert apply().empty
    materialize(end="2024-05-01T12:00:00Z")
    assert open_online_store().has_view("derived")
    changed = TYPED_DEFS.replace("ttl=timedelta(hours=12)", "ttl=timedelta(hours=24)")
    changed = changed.replace("by_region = FeatureView", "_gone = FeatureView")  # _gone is still collected
    changed = changed.replace("derived = FeatureView(", "derived = None and FeatureView(")
    write_defs(fws.root, changed)
    d = apply()
    assert d.changed["view"] == {"pyview": ["ttl_seconds"]}
    assert d.removed["view"] == ["derived"] and not d.added["view"]
    assert "~ view pyview (ttl_seconds)" in d.lines() and "- view derived" in d.lines()
    defs = list_definitions()
    assert "derived" not in defs["view"] and "pyview" not in defs["watermark"]  # changed view reloads next run
    assert "activity" in defs["watermark"]
    assert not open_online_store().has_view("derived") and not open_online_store().has_view("pyview")


def test_python_transform_changed_after_apply(fws):
    from fs_helpers import T0, entity_rows_at

    from roost.errors import RoostError
    from roost.features import apply, training_set

    write_typed_data(fws.root)
    p = write_defs(fws.root, TYPED_DEFS)
    apply()
    p.write_text(p.read_text().replace('df["score"] * 2', 'df["score"] * 3'))
    import pytest

    with pytest.raises(RoostError, match="changed since it was applied"):
        training_set(entity_rows_at(T0, [1]), ["pyview:score_x2"])
    apply()
    assert training_set(entity_rows_at(T0, [1]), ["pyview:score_x2"]).shape == (1, 3)


def test_cli_apply_list_materialize_get(fws, cli):
    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    code, out, _ = cli("features", "apply")
    assert code == 0 and "+ view activity" in out
    code, out, _ = cli("features", "apply")
    assert code == 0 and "no changes" in out
    code, out, _ = cli("features", "list", "--json")
    assert code == 0 and set(json.loads(out)["view"]) >= {"activity", "profile"}
    code, out, _ = cli("features", "list")
    assert code == 0 and "activity" in out and "6:00:00" in out
    code, out, _ = cli("features", "materialize", "--end", "2024-05-01T20:00:00Z", "--json")
    assert code == 0
    res = {r["view"]: r for r in json.loads(out)}
    assert res["activity"]["start"] == "2024-05-01T14:00:00+00:00" and res["activity"]["rows"] > 0
    code, out, _ = cli("features", "materialize", "--end", "2024-05-01T21:00:00+00:00")
    assert code == 0 and "materialized" in out
    code, out, _ = cli("features", "get", "--view", "profile", "--entity", "user_id=0,1,2", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["user_id"] for r in rows] == [0, 1, 2]
    assert rows[0]["tier"] == "gold" and rows[0]["age"] == 20 and rows[1]["tier"] is None
    code, out, _ = cli("features", "get", "--view", "by_region", "--entity", "user_id=1,2", "--entity", "region=eu,us")
    assert code == 0 and "by_region" in out
    code, _, err = cli("features", "get", "--view", "profil", "--entity", "user_id=1")
    assert code == 2 and "did you mean 'profile'" in err
    code, _, err = cli("features", "materialize", "--end", "2024-05-01T21:00:00")
    assert code == 2 and "naive" in err
    code, _, err = cli("features", "get", "--view", "profile", "--entity", "user_id=abc")
    assert code == 2 and "int64" in err
