"""Online/offline consistency: after materialising at t, online values equal the training set at t, typed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
from fs_helpers import ALL_REFS, T0, TYPED_DEFS, entity_rows_at, write_defs, write_typed_data

USERS = list(range(45))  # 40..44 have no rows


def check_consistent(t, url: str | None = None) -> None:
    """Online values for every user equal training_set at t, field by field, dtype by dtype."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROOST_ONLINE_AS_OF", t.isoformat())  # online reads at t, ttls included
        _check_at(t, url)


def _check_at(t, url: str | None) -> None:
    from roost.features import OnlineFetcher, online, training_set

    offline = training_set(entity_rows_at(t, USERS), ALL_REFS, output="arrow")
    on = online(ALL_REFS, {"user_id": USERS}, output="arrow", online_store=url)
    assert on.column("user_id").to_pylist() == USERS
    for name in on.column_names[1:]:
        assert on.schema.field(name).type == offline.schema.field(name).type, name
        assert on.column(name).to_pylist() == offline.column(name).to_pylist(), name
    # the serving fetcher gives the same values, as numpy (like Arrow's to_numpy)
    fetched = OnlineFetcher(ALL_REFS, ["user_id"], online_store=url).fetch({"user_id": np.array(USERS)})
    for name, arr in fetched.items():
        want = offline.column(name).to_numpy(zero_copy_only=False)
        assert arr.dtype == want.dtype, (name, arr.dtype, want.dtype)
        if arr.dtype.kind in "fM":
            np.testing.assert_array_equal(arr, want)
        else:
            assert list(arr) == list(want), name
    # composite keys
    regions = ["eu", "us", "eu", "xx"]
    offline2 = training_set(
        pa.table(
            {
                "user_id": pa.array([1, 1, 2, 3], pa.int64()),
                "region": pa.array(regions),
                "event_time": pa.array([t] * 4, pa.timestamp("us", tz="UTC")),
            }
        ),
        ["by_region:score"],
        output="arrow",
    )
    on2 = online(["by_region:score"], {"user_id": [1, 1, 2, 3], "region": regions}, output="arrow", online_store=url)
    assert on2.column("score").to_pylist() == offline2.column("score").to_pylist()


def run_consistency(fws, url: str | None) -> None:
    from roost.features import apply, materialize

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    apply()
    t1 = T0 + timedelta(hours=20, minutes=5)
    res = materialize(end=t1, online_store=url)
    assert {r.view for r in res} == {"activity", "derived", "pyview", "by_region", "profile"}
    check_consistent(t1, url)
    # incremental: continues from the watermark; values that aged past the ttl are expired
    t2 = T0 + timedelta(hours=30)
    res = materialize(end=t2, online_store=url)
    assert all(r.start is None or r.start >= t1 - timedelta(hours=12) for r in res)
    check_consistent(t2, url)
    t3 = T0 + timedelta(hours=47, minutes=50)
    materialize(end=t3, online_store=url)
    check_consistent(t3, url)
    # far after the data: everything with a ttl expired, the static view stays
    t4 = T0 + timedelta(days=5)
    materialize(end=t4, online_store=url)
    check_consistent(t4, url)


def test_online_equals_training_set_sqlite(fws):
    run_consistency(fws, None)


@pytest.mark.services
def test_online_equals_training_set_redis(fws, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    run_consistency(fws, redis_url)


def test_materialize_window_and_watermark(fws):
    from roost.features import apply, list_definitions, materialize

    write_typed_data(fws.root)
    write_defs(fws.root, TYPED_DEFS)
    apply()
    t1 = T0 + timedelta(hours=10)
    first = {r.view: r for r in materialize(end=t1)}
    assert first["activity"].start == t1 - timedelta(hours=6)  # first run: end - ttl
    assert first["profile"].start is None  # static: always the whole source
    wm = list_definitions()["watermark"]["activity"]
    assert wm["watermark"] == t1.isoformat()
    second = {r.view: r for r in materialize(end=t1 + timedelta(hours=1))}
    assert second["activity"].start == t1  # incremental from the watermark
    from roost.errors import RoostError

    with pytest.raises(RoostError, match="before view"):
        materialize(end=t1 - timedelta(hours=1))
