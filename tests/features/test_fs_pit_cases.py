"""Point-in-time join edge cases, spelled out (every engine): ties, TTL edges, nulls, static views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import ENGINES, use_engine, write_defs

T = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
TS = pa.timestamp("us", tz="UTC")

DEFS = """
e = Entity("e", {"k": "int64"})
src = Source("cases", path="data/cases.parquet", event_time="et", created_time="ct")
cases = FeatureView("cases", e, src, fields={"v": "int64", "s": "string"}, ttl=timedelta(minutes=10))
raw = FeatureView("raw", e, Source("cases_noct", path="data/cases.parquet", event_time="et"),
                  fields={"v": "int64"})
static = FeatureView("static", e, Source("cases_static", path="data/cases.parquet", event_time=None,
                     created_time="ct"), fields={"v": "int64"})
"""

# k, et (minutes after T), ct (minutes after T or None), v, s
ROWS = [
    (1, 0, 5, 10, "a"),  # k=1 at 0: three rows tie on event time; the greatest created time wins (v=12)
    (1, 0, 1, 11, "b"),
    (1, 0, 9, 12, "c"),
    (1, 0, None, 13, "d"),  # missing created time counts as oldest
    (2, 0, 3, 20, "x"),  # k=2: full tie on (event, created): the later row in the source wins (v=21)
    (2, 0, 3, 21, "y"),
    (3, 0, 0, 30, "p"),  # k=3: the latest row has null values: nulls win, not the older non-null row
    (3, 2, 2, None, None),
    (4, 5, 5, 40, "q"),  # k=4: a late arrival (created 20 min after its event) still counts at event time
    (4, 4, 30, 41, "r"),
]


@pytest.fixture(params=list(ENGINES))
def cases_ws(fws, request, monkeypatch):
    """The cases registered, joined by one of the engines."""
    from roost.features import apply

    use_engine(monkeypatch, request.param)
    tbl = pa.table(
        {
            "k": pa.array([r[0] for r in ROWS], pa.int64()),
            "et": pa.array([T + r[1] * M for r in ROWS], TS),
            "ct": pa.array([None if r[2] is None else T + r[2] * M for r in ROWS], TS),
            "v": pa.array([r[3] for r in ROWS], pa.int64()),
            "s": pa.array([r[4] for r in ROWS], pa.string()),
        }
    )
    pq.write_table(tbl, fws.root / "data" / "cases.parquet")
    write_defs(fws.root, DEFS)
    apply()
    return fws


def _join(rows: list[tuple[int | None, datetime | None]], refs: list[str]) -> pa.Table:
    from roost.features import training_set

    ents = pa.table({"k": pa.array([r[0] for r in rows], pa.int64()), "event_time": pa.array([r[1] for r in rows], TS)})
    return training_set(ents, refs, full_names=True, output="arrow")


def test_ties_nulls_and_late_arrivals(cases_ws):
    out = _join([(1, T), (2, T), (3, T + 2 * M), (3, T + M), (4, T + 5 * M), (4, T + 4 * M)], ["cases:*", "raw:v"])
    assert out.column("cases__v").to_pylist() == [12, 21, None, 30, 40, 41]
    assert out.column("cases__s").to_pylist() == ["c", "y", None, "p", "q", "r"]
    # without a created-time column, ties on event time go to the last row in the source
    assert out.column("raw__v").to_pylist() == [13, 21, None, 30, 40, 41]


@pytest.mark.parametrize("key_type", [pa.int32(), pa.string()], ids=["int32", "string"])
def test_entity_keys_of_another_type_are_cast(cases_ws, key_type):
    """An entity key column of another type than the view's key is cast as SQL would (int32 -> BIGINT, '2' -> 2)."""
    from roost.features import training_set

    keys = [1, 2, None, 9]
    ents = pa.table({"k": pa.array(keys, pa.int64()).cast(key_type), "event_time": pa.array([T] * len(keys), TS)})
    out = training_set(ents, ["cases:v"], full_names=True, output="arrow")
    assert out.column("k").type == key_type  # entity rows come back unchanged
    assert out.column("cases__v").to_pylist() == [12, 21, None, None]


def test_ttl_edges_and_unmatched_rows(cases_ws):
    rows = [
        (1, T - M),
        (1, T + 10 * M),
        (1, T + 10 * M + timedelta(microseconds=1)),
        (9, T),
        (None, T),
        (1, None),
        (2, T + 5 * M),
        (2, T + 5 * M),
    ]
    out = _join(rows, ["cases:v", "raw:v", "static:v"])
    assert out.num_rows == len(rows)  # nothing dropped, duplicates kept
    assert out.column("cases__v").to_pylist() == [None, 12, None, None, None, None, 21, 21]  # ttl: inclusive edge
    assert out.column("raw__v").to_pylist() == [None, 13, 13, None, None, None, 21, 21]  # no ttl
    # static: every row is valid at any time; among a key's rows the greatest created time, then source order
    assert out.column("static__v").to_pylist() == [12, 12, 12, None, None, None, 21, 21]


def test_nanosecond_times_never_look_ahead(fws):
    """Times are compared at microsecond resolution, floored on both sides (DuckDB's cast would round up)."""
    from roost.features import apply, training_set

    ns = pa.timestamp("ns", tz="UTC")
    hour = 1_704_070_800_000_000_000  # 2024-01-01T01:00:00Z in ns
    pq.write_table(
        pa.table(
            {
                "k": pa.array([1, 1], pa.int64()),
                "et": pa.array([hour - 3_600 * 10**9, hour], ns),
                "et_naive": pa.array([hour - 3_600 * 10**9, hour], pa.timestamp("ns")),
                "v": pa.array([1, 2], pa.int64()),
            }
        ),
        fws.root / "data" / "ns.parquet",
    )
    write_defs(
        fws.root,
        """
e = Entity("e", {"k": "int64"})
aware = FeatureView("aware", e, Source("ns", path="data/ns.parquet", event_time="et"), fields={"v": "int64"})
naive = FeatureView("naive", e, Source("ns_naive", path="data/ns.parquet", event_time="et_naive",
                    timezone="UTC"), fields={"v": "int64"})
""",
    )
    apply()
    t = pa.array([hour - 1, hour, hour + 999, hour + 1000], ns)
    ents = pa.table({"k": pa.array([1] * 4, pa.int64()), "event_time": t})
    out = training_set(ents, ["aware:v", "naive:v"], full_names=True, output="arrow")
    assert out.column("event_time").equals(ents.column("event_time"))  # returned as given
    assert out.column("aware__v").to_pylist() == [1, 2, 2, 2]
    assert out.column("naive__v").to_pylist() == [1, 2, 2, 2]
