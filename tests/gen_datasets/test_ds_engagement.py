"""The engagement generator: determinism, schema, missing values, base rate, and the PIT join against references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roost.datasets import fingerprint, make_engagement, make_engagement_flat
from roost.datasets.engagement import generate
from roost.datasets.joins import latest_join

ROWS = 20_000


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return generate(ROWS, seed=3)


@pytest.fixture(scope="module")
def flat() -> pd.DataFrame:
    return make_engagement_flat(ROWS, seed=3)


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a, b, c = (
        make_engagement_flat(5_000, seed=1),
        make_engagement_flat(5_000, seed=1),
        make_engagement_flat(5_000, seed=2),
    )
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    ta, tb = generate(5_000, seed=1), generate(5_000, seed=1)
    for name in ta:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True)


def test_written_files_are_byte_identical_under_seed(tmp_path) -> None:
    p1 = make_engagement(3_000, tmp_path / "a", seed=5)
    p2 = make_engagement(3_000, tmp_path / "b", seed=5)
    assert set(p1) == {"users", "items", "impressions", "train", "items_latest"}
    for name in p1:
        assert p1[name].name == f"{name}.parquet"
        assert p1[name].read_bytes() == p2[name].read_bytes(), name
    train = pd.read_parquet(p1["train"])
    pd.testing.assert_frame_equal(train, make_engagement_flat(3_000, seed=5), check_exact=True)


def test_scale_knobs(tables) -> None:
    assert len(tables["impressions"]) == ROWS
    assert tables["users"]["user_id"].nunique() == ROWS // 20
    assert tables["items"]["item_id"].nunique() == ROWS // 50
    small = generate(2_000, seed=0, users=10, items=7, days=3)
    assert small["users"]["user_id"].nunique() == 10 and small["items"]["item_id"].nunique() == 7
    assert len(small["users"]) == 10 * 4  # one snapshot per day plus the one before the span


def _is_utc(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dt.tz) == "UTC"


def test_schema_and_dtypes(tables, flat) -> None:
    users, items, imps = tables["users"], tables["items"], tables["impressions"]
    for df, ts_cols in (
        (users, ["event_time", "created_time"]),
        (items, ["event_time", "created_time"]),
        (imps, ["event_time", "label_time"]),
        (flat, ["event_time", "label_time"]),
    ):
        for c in ts_cols:
            assert _is_utc(df[c]), c
    for c in ("user_id", "clicks_7d", "sessions_7d", "account_age_days"):
        assert users[c].dtype == np.int64, c
    for c in ("impression_id", "user_id", "item_id", "clicked", "hour", "position"):
        assert imps[c].dtype == np.int64, c
    for df, cols in ((users, ["country", "device", "age_group", "gender"]), (items, ["category"])):
        for c in cols:
            assert pd.api.types.is_string_dtype(df[c]), c
    for c in ("price", "quality_score", "item_ctr_7d"):
        assert pd.api.types.is_float_dtype(items[c]), c
    assert set(imps["clicked"].unique()) == {0, 1}
    assert imps["hour"].between(0, 23).all() and imps["position"].between(1, 10).all()
    assert imps["impression_id"].is_unique and imps["event_time"].is_monotonic_increasing
    expected = (
        list(imps.columns)
        + [c for c in users.columns if c not in ("user_id", "event_time", "created_time")]
        + [c for c in items.columns if c not in ("item_id", "event_time", "created_time")]
    )
    assert list(flat.columns) == expected


def test_missing_values_present(tables, flat) -> None:
    users, items = tables["users"], tables["items"]
    for c in ("avg_session_min", "country", "device", "gender"):
        assert 0 < users[c].isna().mean() < 0.2, c
        assert flat[c].isna().any(), c
    assert items["item_ctr_7d"].isna().any()
    for c in ("user_id", "event_time", "age_group", "clicks_7d"):
        assert users[c].notna().all(), c


def test_timestamps_arrive_late_and_labels_are_delayed(tables) -> None:
    for name in ("users", "items"):
        df = tables[name]
        lag = df["created_time"] - df["event_time"]
        assert (lag >= pd.Timedelta(0)).all()
        assert (lag > pd.Timedelta(hours=1)).mean() > 0.01  # late arrivals exist
        assert (lag < pd.Timedelta(hours=1)).mean() > 0.8
    imps = tables["impressions"]
    delay = imps["label_time"] - imps["event_time"]
    assert (delay > pd.Timedelta(0)).all() and (delay > pd.Timedelta(hours=6)).any()


def test_label_base_rate_in_range(flat) -> None:
    for seed in (0, 1, 2):
        rate = make_engagement_flat(10_000, seed=seed)["clicked"].mean()
        assert 0.05 <= rate <= 0.20, (seed, rate)
    assert 0.05 <= flat["clicked"].mean() <= 0.20


def test_features_drift_over_snapshots(tables) -> None:
    users = tables["users"]
    per_user = users.groupby("user_id").agg(
        n=("event_time", "size"), clicks=("clicks_7d", "nunique"), sessions=("sessions_7d", "nunique")
    )
    assert (per_user["n"] > 5).all()
    assert (per_user["sessions"] > 1).mean() > 0.9
    items = tables["items"]
    assert (items.groupby("item_id")["price"].nunique() > 1).all()


def test_clicks_7d_counts_past_clicks_only(tables) -> None:
    """A snapshot's clicks_7d equals the user's clicks whose label arrived in the 7 days before it."""
    users, imps = tables["users"], tables["impressions"]
    clicks = imps[imps["clicked"] == 1]
    sample = users.sample(200, random_state=0)
    for row in sample.itertuples():
        mine = clicks[clicks["user_id"] == row.user_id]
        window = (mine["label_time"] < row.event_time) & (mine["label_time"] >= row.event_time - pd.Timedelta(days=7))
        assert row.clicks_7d == int(window.sum())


def _brute_force(imp: pd.Series, snaps: pd.DataFrame, key: str) -> pd.Series:
    """The latest snapshot of the impression's entity with event_time <= the impression time."""
    rows = snaps[(snaps[key] == imp[key]) & (snaps["event_time"] <= imp["event_time"])]
    return rows.loc[rows["event_time"].idxmax()]


def test_pit_join_matches_brute_force_reference(tables, flat) -> None:
    users, items, imps = tables["users"], tables["items"], tables["impressions"]
    ucols = ["clicks_7d", "sessions_7d", "avg_session_min", "account_age_days", "country", "device", "gender"]
    icols = ["category", "price", "quality_score", "popularity_7d", "item_clicks_7d", "item_ctr_7d"]
    for i in np.random.default_rng(0).choice(len(imps), 300, replace=False):
        imp, got = imps.iloc[i], flat.iloc[i]
        assert got["impression_id"] == imp["impression_id"]
        for cols, snaps, key in ((ucols, users, "user_id"), (icols, items, "item_id")):
            ref = _brute_force(imp, snaps, key)
            for c in cols:
                if pd.isna(ref[c]):
                    assert pd.isna(got[c]), (i, c)
                else:
                    assert got[c] == ref[c], (i, c, got[c], ref[c])


def test_pit_join_matches_pandas_merge_asof(tables, flat) -> None:
    users, items, imps = tables["users"], tables["items"], tables["impressions"]
    ref = pd.merge_asof(
        imps.sort_values("event_time"),
        users.drop(columns="created_time").sort_values("event_time"),
        on="event_time",
        by="user_id",
        direction="backward",
    )
    ref = pd.merge_asof(
        ref,
        items.drop(columns="created_time").sort_values("event_time"),
        on="event_time",
        by="item_id",
        direction="backward",
    )
    ref = ref.sort_values("impression_id").reset_index(drop=True)[list(flat.columns)]
    pd.testing.assert_frame_equal(flat, ref, check_dtype=False)


def test_latest_join_takes_each_entitys_last_snapshot(tables) -> None:
    users, items, imps = tables["users"], tables["items"], tables["impressions"]
    naive = latest_join(imps, users, items)
    last = users.sort_values("event_time").groupby("user_id").tail(1).set_index("user_id")
    assert (naive["sessions_7d"].to_numpy() == last.loc[imps["user_id"], "sessions_7d"].to_numpy()).all()
    cut = imps["event_time"].quantile(0.5)
    as_of = latest_join(imps, users, items, as_of=cut)
    seen = users[users["created_time"] <= cut].sort_values("event_time").groupby("user_id").tail(1)
    assert (
        as_of["clicks_7d"].to_numpy() == seen.set_index("user_id").loc[imps["user_id"], "clicks_7d"].to_numpy()
    ).all()


def test_rows_must_be_positive() -> None:
    from roost.errors import RoostError

    with pytest.raises(RoostError, match="rows"):
        generate(0)


def test_items_latest_has_one_row_per_item_its_latest_snapshot(tmp_path) -> None:
    """`items_latest.parquet` is indexable (each item_id once) and holds each item's latest snapshot (brute force)."""
    paths = make_engagement(3_000, tmp_path, seed=4)
    latest = pd.read_parquet(paths["items_latest"])
    items = pd.read_parquet(paths["items"])
    assert latest["item_id"].is_unique and set(latest["item_id"]) == set(items["item_id"])
    best = []
    for item_id in sorted(set(items["item_id"])):
        snaps = items[items["item_id"] == item_id]
        best.append(max(range(len(snaps)), key=lambda i: (snaps["event_time"].iloc[i], snaps["created_time"].iloc[i])))
        best[-1] = snaps.index[best[-1]]
    pd.testing.assert_frame_equal(latest, items.loc[best].reset_index(drop=True), check_exact=True)
