"""Point-in-time joins on hostile data, every engine against a brute-force reference: naive source times
localised across DST transitions, instants from year 1 to 9999, int64 keys at both extremes, awkward string keys,
a 1 µs TTL, an empty source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import ENGINES, use_engine, write_defs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TS = pa.timestamp("us", tz="UTC")
US = timedelta(microseconds=1)

# --- naive source times read in a time zone -------------------------------------------------------------------
ZONES = {"ny": "America/New_York", "london": "Europe/London", "lhi": "Australia/Lord_Howe"}  # LHI: 30-min DST
# local dates of the 2024 transitions (either direction) of those zones; pre-1970 New York ones too
DAYS = [
    datetime(2024, 3, 10),
    datetime(2024, 11, 3),
    datetime(2024, 3, 31),
    datetime(2024, 10, 27),
    datetime(2024, 4, 7),
    datetime(2024, 10, 6),
    datetime(1968, 4, 28),
    datetime(1968, 10, 27),
]
STEP = timedelta(minutes=15)
NAIVE = [(j, d + i * STEP) for j, d in enumerate(DAYS) for i in range(17)]  # 00:00 .. 04:00 local, per day

DST_DEFS = "e = Entity('e', {'k': 'int64'})\n" + "".join(
    f"dst_{n} = FeatureView('dst_{n}', e, Source('dst_{n}', path='data/dst.parquet', event_time='local', "
    f"timezone={z!r}), fields={{'v': 'int64'}})\n"
    for n, z in ZONES.items()
)


def localise(naive: datetime, zone: str) -> datetime:
    """The documented reading of a naive local time: the later of its instants when the clock went back
    (an ambiguous time), the offset before the jump when it went forward (a time that never existed)."""
    z = ZoneInfo(zone)
    # (converted first: aware datetimes of one tzinfo compare by wall time, fold ignored)
    return max(naive.replace(tzinfo=z, fold=f).astimezone(UTC) for f in (0, 1))


def dst_reference(zone: str, probes: list[tuple[int, datetime]]) -> list[int | None]:
    """Brute force: the last source row (in source order among equal instants) at or before each probe."""
    rows = [(k, localise(t, zone), i) for i, (k, t) in enumerate(NAIVE)]
    out: list[int | None] = []
    for k, t in probes:
        best = max(((et, i) for rk, et, i in rows if rk == k and et <= t), default=None)
        out.append(None if best is None else best[1])
    return out


def dst_probes() -> list[tuple[int, datetime]]:
    """Every key every 5 minutes from 12 h before to 28 h after its local midnight read as UTC."""
    return [(j, d.replace(tzinfo=UTC) + timedelta(minutes=5 * m)) for j, d in enumerate(DAYS) for m in range(-144, 337)]


@pytest.fixture(scope="module")
def dst_ws(module_ws):
    """Naive times on a 15-minute grid across each transition, one key per transition day, three zones."""
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    tbl = pa.table(
        {
            "k": pa.array([k for k, _ in NAIVE], pa.int64()),
            "local": pa.array([t for _, t in NAIVE], pa.timestamp("us")),
            "v": pa.array(range(len(NAIVE)), pa.int64()),
        }
    )
    pq.write_table(tbl, module_ws.root / "data" / "dst.parquet")
    write_defs(module_ws.root, DST_DEFS, "dst.py")
    apply()
    workspace.use(None)
    return module_ws


def check_dst(ws) -> None:
    """training_set on the current engine equals the brute-force reading of the naive times, zone by zone."""
    from roost import workspace
    from roost.features import training_set

    workspace.use(ws)
    probes = dst_probes()
    ents = pa.table(
        {"k": pa.array([k for k, _ in probes], pa.int64()), "event_time": pa.array([t for _, t in probes], TS)}
    )
    got = training_set(ents, [f"dst_{n}:v" for n in ZONES], full_names=True)
    for n, zone in ZONES.items():
        want = dst_reference(zone, probes)
        col = got.column(f"dst_{n}__v").to_pylist()
        bad = [(probes[i], col[i], w) for i, w in enumerate(want) if col[i] != w]
        assert not bad, (zone, len(bad), bad[:3])
    workspace.use(None)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_naive_times_across_dst_match_the_reference(dst_ws, engine, monkeypatch):
    use_engine(monkeypatch, engine)
    check_dst(dst_ws)


@pytest.mark.slow
def test_spark_reads_naive_times_across_dst_like_duckdb(dst_ws, spark, monkeypatch):
    """Spark's to_utc_timestamp takes the earlier instant of an ambiguous local time, DuckDB the later one: the
    two engines disagreed for the hour after each fall-back transition."""
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "spark")
    check_dst(dst_ws)


# --- extreme instants, keys and TTLs (random, hypothesis) -----------------------------------------------------
INSTANTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC) + US,
    datetime(1583, 1, 1, tzinfo=UTC),  # just after the Julian/Gregorian switch
    datetime(1900, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC) + US,
    datetime(1970, 1, 2, tzinfo=UTC),
    datetime(2024, 2, 29, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - US,
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
INT_KEYS = [-(2**63), -(2**63) + 1, -1, 0, 2**63 - 2, 2**63 - 1]
STR_KEYS = ["", " ", "a", "A", "a ", "é", "1", "01", "\u0000x"]
HOSTILE_VIEWS = {  # view -> (ttl, key column)
    "h_none": (None, "k"),
    "h_us": (US, "k"),
    "h_day": (timedelta(days=1), "k"),
    "h_80y": (timedelta(days=29220), "k"),
    "h_str": (timedelta(days=1), "s"),
    "h_empty": (timedelta(days=1), "k"),
}
HOSTILE_DEFS = """
ik = Entity("ik", {"k": "int64"})
sk = Entity("sk", {"s": "string"})
src = Source("h_src", path="data/hostile.parquet", event_time="et", created_time="ct")
F = {"v": "int64"}
h_none = FeatureView("h_none", ik, src, fields=F)
h_us = FeatureView("h_us", ik, src, fields=F, ttl=timedelta(microseconds=1))
h_day = FeatureView("h_day", ik, src, fields=F, ttl=timedelta(days=1))
h_80y = FeatureView("h_80y", ik, src, fields=F, ttl=timedelta(days=29220))
h_str = FeatureView("h_str", sk, src, fields=F, ttl=timedelta(days=1))
h_empty = FeatureView("h_empty", ik, Source("h_empty", path="data/empty.parquet", event_time="et"), fields=F,
                      ttl=timedelta(days=1))
"""

feature_row = st.fixed_dictionaries(
    {
        "k": st.sampled_from(INT_KEYS),
        "s": st.one_of(st.none(), st.sampled_from(STR_KEYS)),
        "et": st.sampled_from(INSTANTS),
        "ct": st.one_of(st.none(), st.sampled_from(INSTANTS)),
    }
)
entity_row = st.fixed_dictionaries(
    {
        "k": st.one_of(st.none(), st.sampled_from(INT_KEYS)),
        "s": st.one_of(st.none(), st.sampled_from(STR_KEYS)),
        "t": st.sampled_from(INSTANTS),
    }
)


def write_hostile(root, rows: list[dict]) -> None:
    """data/hostile.parquet from the rows (v = position in the file); data/empty.parquet with no rows."""
    tbl = pa.table(
        {
            "k": pa.array([r["k"] for r in rows], pa.int64()),
            "s": pa.array([r["s"] for r in rows], pa.string()),
            "et": pa.array([r["et"] for r in rows], TS),
            "ct": pa.array([r["ct"] for r in rows], TS),
            "v": pa.array(range(len(rows)), pa.int64()),
        }
    )
    pq.write_table(tbl, root / "data" / "hostile.parquet")
    pq.write_table(tbl.slice(0, 0), root / "data" / "empty.parquet")


def hostile_reference(rows: list[dict], ents: list[dict], view: str) -> list[int | None]:
    """Brute force: the latest row with et <= t (and >= t - ttl), ties by created time (missing = oldest), then
    by position (later wins); null keys match nothing; the empty source matches nothing; a TTL reaching before
    year 1 expires nothing."""
    ttl, key = HOSTILE_VIEWS[view]
    out: list[int | None] = []
    for e in ents:
        best = None
        for i, r in enumerate(rows if view != "h_empty" else []):
            if e[key] is None or r[key] != e[key] or r["et"] > e["t"]:
                continue
            if ttl is not None and e["t"] - datetime.min.replace(tzinfo=UTC) > ttl and r["et"] < e["t"] - ttl:
                continue
            order = (r["et"], r["ct"] is not None, r["ct"] or r["et"], i)  # a missing created time is the oldest
            best = order if best is None or order > best else best
        out.append(None if best is None else best[-1])
    return out


@pytest.fixture(scope="module")
def hostile_ws(module_ws):
    """The hostile views registered once (on a placeholder file)."""
    from roost import workspace
    from roost.features import apply

    workspace.use(module_ws)
    write_hostile(module_ws.root, [{"k": 0, "s": "a", "et": INSTANTS[0], "ct": None}])
    write_defs(module_ws.root, HOSTILE_DEFS, "hostile.py")
    apply()
    workspace.use(None)
    return module_ws


def check_hostile(ws, rows: list[dict], ents: list[dict]) -> None:
    """training_set on the current engine equals the brute-force reference for every hostile view."""
    from roost import workspace
    from roost.features import training_set

    workspace.use(ws)
    write_hostile(ws.root, rows)
    ent_tbl = pa.table(
        {
            "k": pa.array([e["k"] for e in ents], pa.int64()),
            "s": pa.array([e["s"] for e in ents], pa.string()),
            "event_time": pa.array([e["t"] for e in ents], TS),
        }
    )
    got = training_set(ent_tbl, [f"{v}:v" for v in HOSTILE_VIEWS], full_names=True)
    assert got.select(ent_tbl.column_names).equals(ent_tbl)
    for view in HOSTILE_VIEWS:
        assert got.column(f"{view}__v").to_pylist() == hostile_reference(rows, ents, view), view
    workspace.use(None)


HYPO = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}


@settings(max_examples=25, **HYPO)
@given(rows=st.lists(feature_row, max_size=25), ents=st.lists(entity_row, min_size=1, max_size=20))
@pytest.mark.parametrize("engine", list(ENGINES))
def test_extreme_times_keys_and_ttls_match_brute_force(hostile_ws, engine, rows, ents, monkeypatch):
    use_engine(monkeypatch, engine)
    check_hostile(hostile_ws, rows, ents)


@pytest.mark.slow
@settings(max_examples=6, **HYPO)
@given(rows=st.lists(feature_row, max_size=25), ents=st.lists(entity_row, min_size=1, max_size=20))
def test_spark_extreme_times_keys_and_ttls_match_brute_force(hostile_ws, spark, rows, ents, monkeypatch):
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "spark")
    check_hostile(hostile_ws, rows, ents)


@pytest.mark.slow
def test_spark_says_how_to_write_nanosecond_parquet(fws, spark, monkeypatch):
    """Spark cannot read TIMESTAMP(NANOS) Parquet (pandas and pyarrow write it by default for datetime64[ns]): the
    error said only 'see the Spark error above'; the hint now says how to write microseconds."""
    import numpy as np

    from roost.errors import RoostError
    from roost.features import apply, training_set

    t = np.array(["2024-01-01T00:00:00.000001500"], dtype="datetime64[ns]")
    tbl = pa.table({"k": pa.array([1], pa.int64()), "et": pa.array(t, pa.timestamp("ns", tz="UTC")), "v": [1]})
    pq.write_table(tbl, fws.root / "data" / "ns.parquet")
    write_defs(
        fws.root,
        'e = Entity("e", {"k": "int64"})\nns = FeatureView("ns", e, '
        'Source("ns", path="data/ns.parquet", event_time="et"), fields={"v": "int64"})\n',
    )
    apply()
    ents = pa.table({"k": pa.array([1], pa.int64()), "event_time": pa.array([datetime(2024, 1, 2, tzinfo=UTC)], TS)})
    assert training_set(ents, ["ns:v"], output="arrow").column("v").to_pylist() == [1]  # the local engine
    monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "spark")
    with pytest.raises(RoostError) as e:
        training_set(ents, ["ns:v"], output="arrow")
    assert "coerce_timestamps='us'" in (e.value.hint or "") and "ns" in str(e.value)


@pytest.mark.parametrize("engine", ["sort-search", "sql-packed"])
def test_pandas_entity_frame_keeps_its_index(hostile_ws, engine, monkeypatch):
    """The training set of a pandas frame with its own index (filtered, shuffled) came back with 0..n-1, so the
    natural `df[col] = out[col]` aligned labels, not rows, and silently put other rows' values in."""
    import pandas as pd

    from roost import workspace
    from roost.features import training_set

    use_engine(monkeypatch, engine)
    workspace.use(hostile_ws)
    t = INSTANTS[5]
    write_hostile(hostile_ws.root, [{"k": 0, "s": "a", "et": t, "ct": None}, {"k": -1, "s": "b", "et": t, "ct": None}])
    df = pd.DataFrame(
        {"k": [-1, 0, 5], "s": ["b", "a", "c"], "event_time": pd.to_datetime([t] * 3, utc=True)}, index=[2, 0, 1]
    )
    out = training_set(df, ["h_none:v"])
    assert out.index.equals(df.index)
    df["v"] = out["v"]
    assert df["v"].tolist()[:2] == [1, 0] and pd.isna(df["v"].iloc[2])  # brute force: rows -1 -> 1, 0 -> 0, 5 none
    workspace.use(None)


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.slow)])
def test_float_ids_for_a_string_key_are_refused(fws, engine, request, monkeypatch):
    """Ids read as floats (pandas: integers with gaps) for a 'string' key were cast to the text '1.0' and silently
    matched nothing, entity side and source side, on both engines; now a RoostError names the key."""
    import pandas as pd

    from roost.errors import RoostError
    from roost.features import apply, training_set

    if engine == "spark":
        request.getfixturevalue("spark")
        monkeypatch.setenv("ROOST_OFFLINE_ENGINE", "spark")
    t = datetime(2024, 1, 1, tzinfo=UTC)
    tbl = pa.table({"sid": ["1", "2"], "fid": [1.0, None], "et": pa.array([t, t], TS), "v": [10, 20]})
    pq.write_table(tbl, fws.root / "data" / "ids.parquet")
    defs = (
        'u = Entity("u", {"sid": "string"})\nsrc = Source("ids", path="data/ids.parquet", event_time="et")\n'
        'by_sid = FeatureView("by_sid", u, src, fields={"v": "int64"})\n'
    )
    write_defs(fws.root, defs)
    apply()
    later = pd.to_datetime([t + timedelta(hours=1)] * 2, utc=True)
    ok = training_set(pd.DataFrame({"sid": ["1", "3"], "event_time": later}), ["by_sid:v"])
    assert ok["v"].tolist()[0] == 10 and pd.isna(ok["v"].iloc[1])  # text ids join
    with pytest.raises(RoostError, match="join key 'sid' is declared 'string' but holds double"):
        training_set(pd.DataFrame({"sid": [1.0, float("nan")], "event_time": later}), ["by_sid:v"])
    # the source side: refused when the definitions are applied (and by any join that reads the source)
    write_defs(
        fws.root, defs + 'by_fid = FeatureView("by_fid", Entity("f", {"fid": "string"}), src, fields={"v": "int64"})\n'
    )
    with pytest.raises(RoostError, match="source 'ids': join key 'fid' is declared 'string' but holds"):
        apply()


def test_float_ids_for_a_string_key_are_refused_online():
    """Online reads of a 'string' key took 1.0 as the text '1.0' (str(1.0)) and silently read nothing."""
    import numpy as np

    from roost.errors import RoostError
    from roost.features.serving import key_list

    assert key_list(["1", 2, np.int64(3)], "string", "sid") == ["1", "2", "3"]
    for ids in ([1.0], np.array([1.0, 2.0]), ["1", float("nan")], np.float64(2.0)):
        with pytest.raises(RoostError, match="join key 'sid' is declared 'string' but holds"):
            key_list(ids, "string", "sid")


@pytest.mark.parametrize("engine", ["sort-search", "sql-packed"])
def test_unsigned_ids_beyond_int64_are_a_roost_error(hostile_ws, engine, monkeypatch):
    """A uint64 id above 2^63 - 1 for an int64 key escaped as DuckDB's ConversionException (a traceback)."""
    import numpy as np

    from roost import workspace
    from roost.errors import RoostError
    from roost.features import training_set

    use_engine(monkeypatch, engine)
    workspace.use(hostile_ws)
    write_hostile(hostile_ws.root, [{"k": 0, "s": "a", "et": INSTANTS[5], "ct": None}])
    ents = pa.table(
        {"k": pa.array(np.array([0, 2**63 + 5], dtype=np.uint64)), "event_time": pa.array([INSTANTS[5]] * 2, TS)}
    )
    with pytest.raises(RoostError, match="'k'.*9223372036854775813|9223372036854775813.*k"):
        training_set(ents, ["h_none:v"])
    ok = ents.set_column(0, "k", pa.array(np.array([0, 2**63 - 1], dtype=np.uint64)))
    assert training_set(ok, ["h_none:v"]).column("v").to_pylist() == [0, None]
    workspace.use(None)
