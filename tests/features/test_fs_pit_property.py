"""Property test: training_set equals a hand-written brute-force point-in-time reference on random data."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fs_helpers import write_defs

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
VIEWS = {  # view -> (ttl, uses created time, join keys)
    "p_none": (None, True, ("k",)),
    "p_ttl1": (timedelta(minutes=1), True, ("k",)),
    "p_ttl3": (timedelta(minutes=3), True, ("k",)),
    "p_noct": (timedelta(minutes=5), False, ("k",)),
    "p_pair": (timedelta(minutes=4), True, ("k", "g")),
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
"""

minute = st.integers(0, 8)
feature_row = st.fixed_dictionaries({
    "k": st.integers(0, 3),
    "g": st.sampled_from(["a", "b"]),
    "et": st.one_of(st.none(), minute, minute, minute),
    "late": st.one_of(st.none(), st.integers(0, 3), st.just(0)),  # created = et + late (None: no created time)
    "v_int": st.one_of(st.none(), st.integers(-5, 5)),
    "v_f": st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
    "v_s": st.one_of(st.none(), st.text("xyz", max_size=3)),
})
entity_row = st.fixed_dictionaries({
    "k": st.integers(0, 4),  # 4 never has feature rows
    "g": st.sampled_from(["a", "b", "c"]),
    "t": st.one_of(minute, st.integers(0, 16), st.none()),
})


@pytest.fixture(scope="module")
def prop_ws(module_ws):
    """Register the property-test views once (on a placeholder file)."""
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    write_source(module_ws.root, [{"k": 0, "g": "a", "et": 0, "late": 0, "v_int": 1, "v_f": 1.0, "v_s": "x"}])
    write_defs(module_ws.root, DEFS)
    apply()
    workspace.use(None)
    return module_ws


def write_source(root, rows: list[dict]) -> None:
    """Write feature rows (minute offsets) to data/prop.parquet with tz-aware times."""
    ts = pa.timestamp("us", tz="UTC")
    tbl = pa.table({
        "k": pa.array([r["k"] for r in rows], pa.int64()),
        "g": pa.array([r["g"] for r in rows], pa.string()),
        "et": pa.array([None if r["et"] is None else T0 + r["et"] * MIN for r in rows], ts),
        "ct": pa.array([None if r["et"] is None or r["late"] is None else T0 + (r["et"] + r["late"]) * MIN
                        for r in rows], ts),
        "v_int": pa.array([r["v_int"] for r in rows], pa.int64()),
        "v_f": pa.array([r["v_f"] for r in rows], pa.float64()),
        "v_s": pa.array([r["v_s"] for r in rows], pa.string()),
    })
    pq.write_table(tbl, root / "data" / "prop.parquet")


def reference(rows: list[dict], ents: list[dict], ttl: timedelta | None, use_ct: bool,
              keys: tuple[str, ...]) -> list[tuple | None]:
    """Brute force: for each entity row, the latest feature row with et <= t (and >= t - ttl); ties by created
    time (missing = oldest), then by position in the source (later wins)."""
    out = []
    for e in ents:
        best = None
        for i, r in enumerate(rows):
            if e["t"] is None or r["et"] is None or any(r[k] != e[k] for k in keys):
                continue
            t, et = T0 + e["t"] * MIN, T0 + r["et"] * MIN
            if et > t or (ttl is not None and et < t - ttl):
                continue
            ct = r["et"] + r["late"] if (use_ct and r["late"] is not None) else float("-inf")
            order = (r["et"], ct, i)
            if best is None or order > best[0]:
                best = (order, r)
        out.append(None if best is None else tuple(best[1][f] for f in FIELDS))
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(feature_row, max_size=30), ents=st.lists(entity_row, min_size=1, max_size=25),
       tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]))
@pytest.mark.parametrize("pack", [True, False], ids=["packed-key", "struct-key"])
def test_training_set_matches_brute_force(prop_ws, pack, rows, ents, tz, monkeypatch):
    from roost import workspace
    from roost.features import order, training_set

    monkeypatch.setattr(order, "PACK", pack)
    workspace.use(prop_ws)
    write_source(prop_ws.root, rows)
    ent_tbl = pa.table({
        "k": pa.array([e["k"] for e in ents], pa.int64()),
        "g": pa.array([e["g"] for e in ents], pa.string()),
        "event_time": pa.array([None if e["t"] is None else T0 + e["t"] * MIN for e in ents],
                               pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us", tz=tz)),
        "row": pa.array(range(len(ents)), pa.int64()),
    })
    refs = [f"{v}:{f}" for v in VIEWS for f in FIELDS]
    got = training_set(ent_tbl, refs, full_names=True)
    assert got.num_rows == len(ents)  # no entity row dropped or duplicated
    assert got.select(ent_tbl.column_names).equals(ent_tbl)  # entity rows unchanged, in order
    assert got.schema.field("p_none__v_int").type == pa.int64()
    for view, (ttl, use_ct, keys) in VIEWS.items():
        want = reference(rows, ents, ttl, use_ct, keys)
        cols = [got.column(f"{view}__{f}").to_pylist() for f in FIELDS]
        for i, w in enumerate(want):  # a match whose fields are all null reads like no match, by design
            assert tuple(c[i] for c in cols) == (w or (None,) * len(FIELDS)), (view, i, ents[i], w)
    workspace.use(None)
