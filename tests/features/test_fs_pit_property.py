"""Property test: training_set equals a hand-written brute-force point-in-time reference on random data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import ENGINES, use_engine, write_defs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
US = timedelta(microseconds=1)
VIEWS = {  # view -> (ttl, uses created time, join keys, static)
    "p_none": (None, True, ("k",), False),
    "p_ttl1": (timedelta(minutes=1), True, ("k",), False),
    "p_ttl3": (timedelta(minutes=3), True, ("k",), False),
    "p_noct": (timedelta(minutes=5), False, ("k",), False),
    "p_pair": (timedelta(minutes=4), True, ("k", "g"), False),
    "p_sql": (timedelta(minutes=3), True, ("k",), False),  # a SQL source: read once, fields included
    "p_static": (None, True, ("k",), True),
}
FIELDS = ("v_int", "v_f", "v_s")

DEFS = """
ent = Entity("ent", {"k": "int64"})
pair = Entity("pair", {"k": "int64", "g": "string"})
src = Source("prop_src", path="data/prop.parquet", event_time="et", created_time="ct")
src_noct = Source("prop_src_noct", path="data/prop.parquet", event_time="et")
F = {"v_int": "int64", "v_f": "float64", "v_s": "string"}
p_none = FeatureView("p_none", ent, src, fields=F)
p_ttl1 = FeatureView("p_ttl1", ent, src, fields=F, ttl=timedelta(minutes=1))
p_ttl3 = FeatureView("p_ttl3", ent, src, fields=F, ttl=timedelta(minutes=3))
p_noct = FeatureView("p_noct", ent, src_noct, fields=F, ttl=timedelta(minutes=5))
p_pair = FeatureView("p_pair", pair, src, fields=F, ttl=timedelta(minutes=4))
src_sql = Source("prop_sql", sql="SELECT * FROM read_parquet('data/prop.parquet')", event_time="et",
                 created_time="ct")
p_sql = FeatureView("p_sql", ent, src_sql, fields=F, ttl=timedelta(minutes=3))
src_static = Source("prop_static", path="data/prop.parquet", event_time=None, created_time="ct")
p_static = FeatureView("p_static", ent, src_static, fields=F)
"""

minute = st.integers(0, 8)
sub = st.sampled_from([0, 0, 0, 1, 1000, 30_000_000])  # microseconds past the minute: every time granularity
feature_row = st.fixed_dictionaries(
    {
        "k": st.integers(-2, 3),
        "g": st.sampled_from(["a", "b"]),
        "et": st.one_of(st.none(), minute, minute, minute),
        "sub": sub,
        "late": st.one_of(st.none(), st.integers(0, 3), st.just(0)),  # created = et + late (None: no created time)
        "v_int": st.one_of(st.none(), st.integers(-5, 5)),
        "v_f": st.one_of(st.none(), st.just(math.nan), st.floats(-1e6, 1e6, allow_nan=False)),  # NaN = missing
        "v_s": st.one_of(st.none(), st.text("xyz", max_size=3)),
    }
)
entity_row = st.fixed_dictionaries(
    {
        "k": st.integers(-2, 4),  # 4 never has feature rows
        "g": st.sampled_from(["a", "b", "c"]),
        "t": st.one_of(minute, st.integers(-1, 16), st.none()),
        "sub": st.sampled_from([0, 0, 1, 999, 30_000_000, 59_999_999]),
    }
)


def et_of(r: dict) -> datetime | None:
    """A feature row's event time."""
    return None if r["et"] is None else T0 + r["et"] * MIN + r["sub"] * US


def t_of(e: dict) -> datetime | None:
    """An entity row's time."""
    return None if e["t"] is None else T0 + e["t"] * MIN + e["sub"] * US


@pytest.fixture(scope="module")
def prop_ws(module_ws):
    """Register the property-test views once (on a placeholder file)."""
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    write_source(module_ws.root, [{"k": 0, "g": "a", "et": 0, "sub": 0, "late": 0, "v_int": 1, "v_f": 1.0, "v_s": "x"}])
    write_defs(module_ws.root, DEFS)
    apply()
    workspace.use(None)
    return module_ws


def ct_of(r: dict) -> datetime | None:
    """A feature row's created time (None without an event time or with late=None)."""
    return None if r["et"] is None or r["late"] is None else et_of(r) + r["late"] * MIN


def write_source(root, rows: list[dict]) -> None:
    """Write feature rows to data/prop.parquet with tz-aware times."""
    ts = pa.timestamp("us", tz="UTC")
    tbl = pa.table(
        {
            "k": pa.array([r["k"] for r in rows], pa.int64()),
            "g": pa.array([r["g"] for r in rows], pa.string()),
            "et": pa.array([et_of(r) for r in rows], ts),
            "ct": pa.array([ct_of(r) for r in rows], ts),
            "v_int": pa.array([r["v_int"] for r in rows], pa.int64()),
            "v_f": pa.array([r["v_f"] for r in rows], pa.float64()),
            "v_s": pa.array([r["v_s"] for r in rows], pa.string()),
        }
    )
    pq.write_table(tbl, root / "data" / "prop.parquet")


OLDEST = datetime.min.replace(tzinfo=UTC)


def _missing(v: object) -> object:
    """NaN means missing: the training set has null there."""
    return None if isinstance(v, float) and math.isnan(v) else v


def reference(
    rows: list[dict], ents: list[dict], ttl: timedelta | None, use_ct: bool, keys: tuple[str, ...], static: bool = False
) -> list[tuple | None]:
    """Brute force: for each entity row, the latest feature row with et <= t (and >= t - ttl); ties by created
    time (missing = oldest), then by position in the source (later wins). Static: every row, at any time."""
    out = []
    for e in ents:
        best = None
        t = t_of(e)
        for i, r in enumerate(rows):
            if t is None or any(r[k] != e[k] for k in keys):
                continue
            et = OLDEST if static else et_of(r)
            if et is None or et > t or (ttl is not None and et < t - ttl):
                continue
            ct = ct_of(r) if use_ct and ct_of(r) is not None else OLDEST
            order = (et, ct, i)
            if best is None or order > best[0]:
                best = (order, r)
        out.append(None if best is None else tuple(_missing(best[1][f]) for f in FIELDS))
    return out


def check_brute_force(ws, rows: list[dict], ents: list[dict], tz: str) -> None:
    """training_set on the current engine equals the brute-force reference for every view."""
    from roost import workspace
    from roost.features import training_set

    workspace.use(ws)
    write_source(ws.root, rows)
    ent_tbl = pa.table(
        {
            "k": pa.array([e["k"] for e in ents], pa.int64()),
            "g": pa.array([e["g"] for e in ents], pa.string()),
            "event_time": pa.array([t_of(e) for e in ents], pa.timestamp("us", tz="UTC")).cast(
                pa.timestamp("us", tz=tz)
            ),
            "row": pa.array(range(len(ents)), pa.int64()),
        }
    )
    refs = [f"{v}:{f}" for v in VIEWS for f in FIELDS]
    got = training_set(ent_tbl, refs, full_names=True)
    assert got.num_rows == len(ents)  # no entity row dropped or duplicated
    assert got.select(ent_tbl.column_names).equals(ent_tbl)  # entity rows unchanged, in order
    assert got.schema.field("p_none__v_int").type == pa.int64()
    for view, (ttl, use_ct, keys, static) in VIEWS.items():
        want = reference(rows, ents, ttl, use_ct, keys, static)
        cols = [got.column(f"{view}__{f}").to_pylist() for f in FIELDS]
        for i, w in enumerate(want):  # a match whose fields are all null reads like no match, by design
            assert tuple(c[i] for c in cols) == (w or (None,) * len(FIELDS)), (view, i, ents[i], w)
    workspace.use(None)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    rows=st.lists(feature_row, max_size=30),
    ents=st.lists(entity_row, min_size=1, max_size=25),
    tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
)
@pytest.mark.parametrize("engine", list(ENGINES))
def test_training_set_matches_brute_force(prop_ws, engine, rows, ents, tz, monkeypatch):
    use_engine(monkeypatch, engine)
    check_brute_force(prop_ws, rows, ents, tz)


# the same property on the Spark offline engine: fewer examples (each is a few Spark jobs)
@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    rows=st.lists(feature_row, max_size=30),
    ents=st.lists(entity_row, min_size=1, max_size=25),
    tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
)
def test_spark_training_set_matches_brute_force(prop_ws, spark, rows, ents, tz, monkeypatch):
    from roost.features.engines import get_engine

    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "spark")
    assert get_engine(prop_ws).name == "spark"
    spark.sparkContext.setJobGroup("roost-prop", "property test")
    check_brute_force(prop_ws, rows, ents, tz)
    assert spark.sparkContext.statusTracker().getJobIdsForGroup("roost-prop")  # Spark did the join
