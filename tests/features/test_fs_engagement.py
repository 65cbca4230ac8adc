"""The engagement example repo: training sets equal the dataset's own PIT join, online equals offline at t."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "engagement" / "features"
engagement = pytest.importorskip("roost.datasets.engagement")
USER = ["clicks_7d", "sessions_7d", "avg_session_min", "account_age_days", "country", "device", "age_group", "gender"]
ITEM = ["category", "price", "quality_score", "popularity_7d", "item_clicks_7d", "item_ctr_7d"]


@pytest.fixture
def eng_ws(fws):
    """The engagement example applied to a workspace with 3,000 generated impressions."""
    from roost.features import apply

    paths = engagement.make_engagement(3000, fws.root / "data", seed=7)
    d = apply(EXAMPLE)
    assert sorted(d.added["view"]) == ["item_derived", "item_stats", "user_derived", "user_stats"]
    return fws, paths


def test_engagement_training_set_matches_dataset_pit_join(eng_ws):
    from roost.features import training_set

    _, paths = eng_ws
    imp = pd.read_parquet(paths["impressions"])
    got = training_set(imp, ["user_stats:*", "item_stats:*", "user_derived:*", "item_derived:*"], output="arrow")
    assert got.num_rows == len(imp)
    want = pa.Table.from_pandas(pd.read_parquet(paths["train"]), preserve_index=False)
    assert got.column("impression_id").equals(want.column("impression_id"))
    assert got.column("clicks_7d").null_count < got.num_rows  # the join found rows
    for c in USER + ITEM:  # same values, typed as declared (daily snapshots: the 2-day ttl never cuts)
        g, w = got.column(c), want.column(c)
        assert g.to_pylist() == w.cast(g.type).to_pylist(), c
    u = pd.DataFrame({"c": got.column("clicks_7d").to_pandas(), "s": got.column("sessions_7d").to_pandas()})
    rate = (u["c"] / u["s"].where(u["s"] > 0)).astype("float64")
    pd.testing.assert_series_equal(got.column("clicks_per_session").to_pandas(), rate, check_names=False)


def test_engagement_online_equals_training_set(eng_ws, monkeypatch):
    from roost.features import OnlineFetcher, materialize, training_set

    _, paths = eng_ws
    users = pd.read_parquet(paths["users"])
    t = users["event_time"].max() - pd.Timedelta(hours=5)
    materialize(end=t.to_pydatetime())
    monkeypatch.setenv("ROOST_ONLINE_AS_OF", t.isoformat())  # online reads at t, ttls included
    ids = sorted(users["user_id"].unique().tolist()) + [10**9]
    refs = ["user_stats:clicks_7d", "user_stats:country", "user_derived:clicks_per_session"]
    off = training_set(pd.DataFrame({"user_id": ids, "event_time": t}), refs, output="arrow")
    got = OnlineFetcher(refs, ["user_id"]).fetch({"user_id": pd.Series(ids).to_numpy()})
    for name, arr in got.items():
        want = off.column(name).to_numpy(zero_copy_only=False)
        assert arr.dtype == want.dtype
        assert pd.Series(arr).equals(pd.Series(want)), name
    assert got["country"][-1] is None
