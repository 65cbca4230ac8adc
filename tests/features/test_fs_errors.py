"""Bad input gives clear RoostErrors; a failed materialisation leaves the online store as it was."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest
from fs_helpers import T0, TYPED_DEFS, entity_rows_at, write_defs, write_typed_data

from roost.errors import ConfigError, NotFoundError, RoostError


@pytest.fixture
def typed(fws):
    """The typed example registered in a fresh workspace."""
    from roost.features import apply

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    apply()
    return fws


def test_unknown_feature_ref_suggests_nearest(typed):
    from roost.features import training_set

    ents = entity_rows_at(T0, [1])
    with pytest.raises(NotFoundError) as e:
        training_set(ents, ["activty:score"])
    assert "activty" in e.value.message and "activity:score" in e.value.hint
    with pytest.raises(NotFoundError) as e:
        training_set(ents, ["activity:scroe"])
    assert "'score'" in e.value.hint
    with pytest.raises(RoostError, match="form 'view:field'"):
        training_set(ents, ["activity.score"])


def test_duplicate_field_names_across_views(typed):
    from roost.features import training_set

    ents = entity_rows_at(T0 + timedelta(hours=3), [1, 2])
    with pytest.raises(RoostError) as e:
        training_set(ents, ["activity:score", "by_region:score"])
    assert "two views" in e.value.message and "full_names=True" in e.value.hint
    ents = ents.append_column("region", pa.array(["eu", "us"]))
    out = training_set(ents, ["activity:score", "by_region:score"], full_names=True, output="arrow")
    assert {"activity__score", "by_region__score"} <= set(out.column_names)


def test_entity_frame_time_column_errors(typed):
    from roost.features import training_set

    df = pd.DataFrame({"user_id": [1], "ts": [pd.Timestamp("2024-05-01", tz="UTC")]})
    with pytest.raises(RoostError) as e:
        training_set(df, ["activity:n"])
    assert "no event-time column 'event_time'" in e.value.message
    assert training_set(df, ["activity:n"], event_time="ts").shape == (1, 3)
    naive = pd.DataFrame({"user_id": [1], "event_time": [pd.Timestamp("2024-05-01")]})
    with pytest.raises(RoostError, match="naive/aware mix"):
        training_set(naive, ["activity:n"])
    with pytest.raises(RoostError, match="lacks join key"):
        training_set(pd.DataFrame({"uid": [1], "event_time": df["ts"]}), ["activity:n"])


def test_source_file_disappeared(typed):
    from roost.features import materialize, training_set

    (typed.root / "data" / "events.parquet").unlink()
    with pytest.raises(RoostError) as e:
        training_set(entity_rows_at(T0, [1]), ["activity:n"])
    assert "events.parquet" in e.value.message and "disappeared" in e.value.hint
    with pytest.raises(RoostError, match="events.parquet"):
        materialize(end=T0 + timedelta(hours=1))


def _snapshot(url=None):
    from roost.features import online

    return online(["activity:*", "profile:*"], {"user_id": list(range(40))}, output="arrow", online_store=url)


def _atomicity(fws, url=None):
    t1 = T0 + timedelta(hours=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROOST_ONLINE_AS_OF", (t1 + timedelta(hours=6)).isoformat())  # online reads then, ttls included
        _atomicity_at(fws, t1, url)


def _atomicity_at(fws, t1, url):
    from roost.features import list_definitions, materialize
    from roost.features.online_stores import base

    materialize(end=t1, online_store=url)
    before = _snapshot(url)
    wm = list_definitions()["watermark"]
    # 1) a source disappears: nothing is written, no watermark moves
    src = fws.root / "data" / "profiles.csv"
    saved = src.read_text()
    src.unlink()
    with pytest.raises(RoostError):
        materialize(end=t1 + timedelta(hours=6), online_store=url)
    assert _snapshot(url).equals(before)
    assert list_definitions()["watermark"] == wm
    src.write_text(saved)
    # 2) a failure while writing the second view: the first view's rows are rolled back too
    calls = {"n": 0}
    orig = base.ViewData.columns

    def failing(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return orig(self)

    pytest.MonkeyPatch.setattr(mp := pytest.MonkeyPatch(), base.ViewData, "columns", failing)
    try:
        with pytest.raises(OSError, match="simulated"):
            materialize(end=t1 + timedelta(hours=6), online_store=url)
    finally:
        mp.undo()
    assert calls["n"] == 2
    assert _snapshot(url).equals(before)
    assert list_definitions()["watermark"] == wm
    # and the next run works and moves on
    materialize(end=t1 + timedelta(hours=6), online_store=url)
    assert not _snapshot(url).equals(before)


def test_failed_materialization_keeps_previous_values_sqlite(typed):
    _atomicity(typed)


@pytest.mark.services
def test_failed_materialization_keeps_previous_values_redis(typed, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    _atomicity(typed, redis_url)


def test_definition_errors():
    from roost.features import Entity, FeatureView, Source

    with pytest.raises(ConfigError, match="unknown dtype") as e:
        Entity("user", {"user_id": "int46"})
    assert "int64" in e.value.hint
    with pytest.raises(ConfigError, match="not a plain identifier"):
        Entity("user stats")
    with pytest.raises(ConfigError, match="join keys must be"):
        Entity("user", {"user_id": "float64"})
    user = Entity("user", "user_id")
    src = Source("s", path="x.parquet")
    with pytest.raises(ConfigError, match="exactly one of path= or sql="):
        Source("s2")
    with pytest.raises(ConfigError, match="also join keys"):
        FeatureView("v", user, src, fields={"user_id": "int64"})
    with pytest.raises(ConfigError, match="ttl must be positive"):
        FeatureView("v", user, src, fields={"a": "int64"}, ttl=timedelta(0))
    with pytest.raises(ConfigError, match="unknown field"):
        FeatureView("v", user, src, fields={"a": "int64"}, transform={"b": "1"})
    with pytest.raises(ConfigError, match="module-level"):
        FeatureView("v", user, src, fields={"a": "int64"}, transform=lambda df: df).spec()


def test_apply_validation_errors(fws):
    from roost.features import apply

    pd.DataFrame({"user_id": [1], "event_time": [pd.Timestamp("2024-01-01")], "x": [1.0]}).to_parquet(
        fws.root / "data" / "naive.parquet"
    )
    write_defs(
        fws.root,
        """
u = Entity("u", "user_id")
v = FeatureView("v", u, Source("naive", path="data/naive.parquet"), fields={"x": "float64"})
""",
    )
    with pytest.raises(RoostError, match="timezone-naive") as e:
        apply()
    assert "timezone='UTC'" in e.value.hint
    write_defs(
        fws.root,
        """
u = Entity("u", "user_id")
v = FeatureView("v", u, Source("naive", path="data/naive.parquet", timezone="UTC"), fields={"x": "float64",
                "y": "float64"})
""",
    )
    with pytest.raises(RoostError, match="field 'y' is not a column"):
        apply()
    write_defs(
        fws.root,
        """
u = Entity("u", "user_id")
v = FeatureView("v", u, Source("naive", path="data/naive.parquet", timezone="UTC"), fields={"y": "float64"},
                transform={"y": "x +* 2"})
""",
    )
    with pytest.raises(RoostError, match="view 'v'"):
        apply()
    write_defs(
        fws.root,
        """
u = Entity("u", "user_id")
v = FeatureView("v", u, Source("gone", path="data/missing.parquet"), fields={"x": "float64"})
""",
    )
    with pytest.raises(RoostError, match="no file matches"):
        apply()
    write_defs(fws.root, "u = Entity('u', 'user_id')\nraise ValueError('boom')\n")
    with pytest.raises(ConfigError, match="boom"):
        apply()
