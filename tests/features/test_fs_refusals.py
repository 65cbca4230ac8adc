"""Silent wrong answers the feature store refuses or fixes (issue #16): NaN skew, naive/aware time mixes,
fractional integer keys, floats rounded into integer fields. Each runs on every PIT engine, on materialize +
online reads, and on Parquet, CSV and SQL sources; expected values come from the raw rows (brute force)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fs_helpers import ENGINES, TS, use_engine, write_defs

from roost.errors import RoostError

T0 = datetime(2024, 5, 1, tzinfo=UTC)
SOURCES = {
    "parquet": 'path="data/rows.parquet"',
    "csv": 'path="data/rows.csv"',
    "sql": "sql=\"SELECT * FROM read_parquet('data/rows.parquet')\"",
}


def _write(root, tbl: pa.Table) -> None:
    """The same rows as data/rows.parquet and data/rows.csv (NaN written as 'nan')."""
    pq.write_table(tbl, root / "data" / "rows.parquet")
    df = tbl.to_pandas()
    df["event_time"] = df["event_time"].map(lambda t: t.isoformat())
    df.to_csv(root / "data" / "rows.csv", index=False, na_rep="")


def _defs(root, kind: str, key: str = "int64", fields: str = '{"x": "float64", "y": "float32"}') -> None:
    write_defs(
        root,
        f"""
u = Entity("u", {{"uid": "{key}"}})
src = Source("rows", {SOURCES[kind]}, event_time="event_time")
v = FeatureView("v", u, src, fields={fields})
""",
    )


def _nan_rows(seed: int, n: int = 300, users: int = 12) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x[rng.random(n) < 0.3] = np.nan
    y = rng.normal(0, 1, n).astype(np.float32)
    y[rng.random(n) < 0.3] = np.nan
    return pa.table(
        {
            "uid": pa.array(rng.integers(0, users, n), pa.int64()),
            "event_time": pa.array([T0 + timedelta(minutes=int(m)) for m in rng.permutation(n)], TS),
            "x": pa.array(x, pa.float64()),  # NaN values, not nulls: Parquet statistics count neither
            "y": pa.array(y, pa.float32()),
        }
    )


def _latest(tbl: pa.Table, t: datetime, col: str) -> dict[int, float | None]:
    """Brute force: each user's value at its latest row at or before t (NaN -> None: the documented policy)."""
    best: dict[int, tuple[datetime, float | None]] = {}
    for u, et, v in zip(
        tbl.column("uid").to_pylist(), tbl.column("event_time").to_pylist(), tbl.column(col).to_pylist()
    ):
        if et <= t and (u not in best or et > best[u][0]):
            best[u] = (et, None if v is None or math.isnan(v) else v)
    return {u: v for u, (_, v) in best.items()}


def _ents(users: list, t: datetime) -> pa.Table:
    return pa.table({"uid": users, "event_time": pa.array([t] * len(users), TS)})


def _each_engine(monkeypatch, fn) -> None:
    for name in ENGINES:
        with monkeypatch.context() as m:
            use_engine(m, name)
            fn(name)


@pytest.mark.parametrize("kind", list(SOURCES))
def test_nan_is_null_offline_and_online(fws, monkeypatch, kind):
    from roost.features import apply, materialize, online, training_set

    tbl = _nan_rows(seed=len(kind))
    _write(fws.root, tbl)
    _defs(fws.root, kind)
    apply()
    t = T0 + timedelta(minutes=200)
    users = list(range(14))  # 12, 13: no rows
    want = {c: [_latest(tbl, t, c).get(u) for u in users] for c in ("x", "y")}
    assert any(v is None for v in want["x"][:12]), "the data must have users whose latest value is NaN"

    def check(engine: str) -> None:
        off = training_set(_ents(users, t), ["v:*"], output="arrow")
        assert off.column("x").to_pylist() == want["x"], engine
        got_y = off.column("y").to_pylist()
        assert [g is None for g in got_y] == [w is None for w in want["y"]], engine
        np.testing.assert_allclose([g for g in got_y if g is not None], [w for w in want["y"] if w is not None])

    _each_engine(monkeypatch, check)
    materialize(end=t)
    on = online(["v:*"], {"uid": users}, output="arrow")
    assert on.column("x").to_pylist() == want["x"]
    off = training_set(_ents(users, t), ["v:*"], output="arrow")
    assert on.column("y").to_pylist() == off.column("y").to_pylist()


@pytest.mark.services
def test_nan_is_null_online_redis(fws, redis_url):
    from roost.features import apply, materialize, online, training_set

    tbl = _nan_rows(seed=7)
    _write(fws.root, tbl)
    _defs(fws.root, "parquet")
    apply()
    t = T0 + timedelta(minutes=250)
    users = list(range(12))
    materialize(end=t, online_store=redis_url)
    on = online(["v:*"], {"uid": users}, output="arrow", online_store=redis_url)
    off = training_set(_ents(users, t), ["v:*"], output="arrow")
    assert on.column("x").to_pylist() == off.column("x").to_pylist() == [_latest(tbl, t, "x").get(u) for u in users]
    assert on.column("y").to_pylist() == off.column("y").to_pylist()


def _int_rows(keys: list, x: list) -> pa.Table:
    return pa.table(
        {
            "uid": keys,
            "event_time": pa.array([T0 + timedelta(minutes=i) for i in range(len(keys))], TS),
            "x": x,
        }
    )


@pytest.mark.parametrize("kind", list(SOURCES))
def test_fractional_source_key_is_refused(fws, monkeypatch, kind):
    from roost.features import apply, materialize, training_set

    _write(fws.root, _int_rows([1.0, 2.0, 3.2, 4.0], [10.0, 20.0, 30.0, 40.0]))
    _defs(fws.root, kind, fields='{"x": "float64"}')
    apply()
    t = T0 + timedelta(hours=1)

    def check(engine: str) -> None:
        with pytest.raises(RoostError) as e:
            training_set(_ents([1, 2, 3, 4], t), ["v:x"], output="arrow")
        assert "'uid'" in e.value.message and "3.2" in e.value.message, engine

    _each_engine(monkeypatch, check)
    with pytest.raises(RoostError, match=r"'uid'.*3\.2"):
        materialize(end=t)


@pytest.mark.parametrize("kind", list(SOURCES))
def test_integral_float_keys_and_int_fields_still_join(fws, monkeypatch, kind):
    """Floats that are whole numbers (how pandas writes ints with gaps) are exact: no refusal."""
    from roost.features import apply, materialize, online, training_set

    _write(fws.root, _int_rows([1.0, 2.0, 3.0, None], [10.0, None, 30.0, 40.0]))
    _defs(fws.root, kind, fields='{"x": "int64"}')
    apply()
    t = T0 + timedelta(hours=1)

    def check(engine: str) -> None:
        out = training_set(_ents([1, 2, 3, 4], t), ["v:x"], output="arrow")
        assert out.column("x").to_pylist() == [10, None, 30, None], engine

    _each_engine(monkeypatch, check)
    materialize(end=t)
    assert online(["v:x"], {"uid": [1, 2, 3, 4]}, output="arrow").column("x").to_pylist() == [10, None, 30, None]


@pytest.mark.parametrize("kind", list(SOURCES))
def test_fractional_float_into_int_field_is_refused(fws, monkeypatch, kind):
    from roost.features import apply, materialize, training_set

    _write(fws.root, _int_rows([1, 2, 3], [1.0, 2.6, 3.0]))
    _defs(fws.root, kind, fields='{"x": "int64"}')
    apply()
    t = T0 + timedelta(hours=1)

    def check(engine: str) -> None:
        with pytest.raises(RoostError) as e:
            training_set(_ents([1, 2, 3], t), ["v:x"], output="arrow")
        assert "field 'x'" in e.value.message and "2.6" in e.value.message, engine
        assert "float64" in (e.value.hint or "")

    _each_engine(monkeypatch, check)
    with pytest.raises(RoostError, match=r"field 'x'.*2\.6"):
        materialize(end=t)


def test_fractional_transform_into_int_field_is_refused(fws):
    from roost.features import apply, training_set

    _write(fws.root, _int_rows([1, 2], [1.0, 2.0]))
    write_defs(
        fws.root,
        """
u = Entity("u", {"uid": "int64"})
v = FeatureView("v", u, Source("rows", path="data/rows.parquet"), fields={"h": "int64", "r": "int64"},
                transform={"h": "x / 4", "r": "round(x / 3)"})
""",
    )
    apply()
    with pytest.raises(RoostError, match=r"field 'h'.*0\.25"):
        training_set(_ents([1, 2], T0 + timedelta(hours=1)), ["v:h"])
    out = training_set(_ents([1, 2], T0 + timedelta(hours=1)), ["v:r"], output="arrow")
    assert out.column("r").to_pylist() == [0, 1]  # round() is an explicit choice, and a whole number


@pytest.mark.parametrize("keys", [[1.0, 3.2], ["1", "3.2"]], ids=["float", "string"])
def test_fractional_entity_keys_are_refused(fws, monkeypatch, keys):
    from roost.features import apply, materialize, online, training_set

    _write(fws.root, _int_rows([1, 3], [1.0, 3.0]))
    _defs(fws.root, "parquet", fields='{"x": "float64"}')
    apply()
    t = T0 + timedelta(hours=1)

    def check(engine: str) -> None:
        with pytest.raises(RoostError, match=r"'uid'.*3\.2"):
            training_set(_ents(keys, t), ["v:x"])
        whole = training_set(_ents([1.0, 3.0], t), ["v:x"], output="arrow")
        assert whole.column("x").to_pylist() == [1.0, 3.0], engine

    _each_engine(monkeypatch, check)
    materialize(end=t)
    for bad in ([3.2], np.array([1.0, 3.2]), ["3.2"]):
        with pytest.raises(RoostError, match="'uid'"):
            online(["v:x"], {"uid": bad})
    assert online(["v:x"], {"uid": np.array([1.0, 3.0])}, output="arrow").column("x").to_pylist() == [1.0, 3.0]


@pytest.mark.services
def test_fractional_online_keys_are_refused_redis(fws, redis_url):
    from roost.features import apply, materialize, online

    _write(fws.root, _int_rows([1, 3], [1.0, 3.0]))
    _defs(fws.root, "parquet", fields='{"x": "float64"}')
    apply()
    materialize(end=T0 + timedelta(hours=1), online_store=redis_url)
    with pytest.raises(RoostError, match=r"'uid'.*3\.2"):
        online(["v:x"], {"uid": [3.2]}, online_store=redis_url)


def _mixed_times(n: int, seed: int) -> list[datetime]:
    """Times in +02:00, about 40% of them written without their offset (naive), the first one aware."""
    rng = np.random.default_rng(seed)
    tz = timezone(timedelta(hours=2))
    out = []
    for i in range(n):
        t = datetime(2024, 5, 1, tzinfo=tz) + timedelta(minutes=int(rng.integers(0, 10_000)))
        out.append(t if i == 0 or rng.random() > 0.4 else t.replace(tzinfo=None))
    return out


def test_entity_frame_mixing_naive_and_aware_is_refused(fws, monkeypatch):
    from roost.features import apply, training_set

    _write(fws.root, _int_rows([1, 2], [1.0, 2.0]))
    _defs(fws.root, "parquet", fields='{"x": "float64"}')
    apply()
    times = _mixed_times(400, seed=1)
    df = pd.DataFrame({"uid": [1 + i % 2 for i in range(400)], "event_time": times})
    n_naive = sum(t.tzinfo is None for t in times)

    def check(engine: str) -> None:
        with pytest.raises(RoostError, match="mixes timezone-naive and tz-aware") as e:
            training_set(df, ["v:x"])
        assert f"{n_naive} naive" in e.value.message, engine
        with pytest.raises(RoostError, match="mixes timezone-naive and tz-aware"):
            training_set(df.iloc[::-1].reset_index(drop=True), ["v:x"])  # naive first: refused as well

    _each_engine(monkeypatch, check)
    aware = pd.DataFrame({"uid": [1, 2], "event_time": [times[0], times[0].astimezone(UTC)]})  # two offsets: fine
    assert training_set(aware, ["v:x"]).shape == (2, 3)


def test_csv_source_mixing_naive_and_aware_is_refused(fws):
    from roost.features import apply, training_set

    times = _mixed_times(50, seed=2)
    lines = ["uid,event_time,x"] + [f"{i % 3},{t.isoformat()},{i}.5" for i, t in enumerate(times)]
    (fws.root / "data" / "rows.csv").write_text("\n".join(lines) + "\n")
    _defs(fws.root, "csv", fields='{"x": "float64"}')
    with pytest.raises(RoostError, match="'event_time' mixes timezone-naive and tz-aware"):
        apply()
    # the same times all with their offsets are read correctly (reference: Python's own parsing)
    aware = [t if t.tzinfo else t.replace(tzinfo=timezone(timedelta(hours=2))) for t in times]
    lines = ["uid,event_time,x"] + [f"0,{t.isoformat()},{i}.5" for i, t in enumerate(aware)]
    (fws.root / "data" / "rows.csv").write_text("\n".join(lines) + "\n")
    apply()
    last = max(range(len(aware)), key=lambda i: aware[i])
    out = training_set(_ents([0], aware[last] + timedelta(seconds=1)), ["v:x"], output="arrow")
    assert out.column("x").to_pylist() == [last + 0.5]


def test_parquet_glob_mixing_naive_and_aware_files_is_refused(fws):
    from roost.features import apply

    d = fws.root / "data" / "parts"
    d.mkdir()
    t = [T0, T0 + timedelta(hours=1)]
    pq.write_table(pa.table({"uid": [1, 2], "event_time": pa.array(t, TS), "x": [1.0, 2.0]}), d / "a.parquet")
    naive = pa.array([x.replace(tzinfo=None) for x in t], pa.timestamp("us"))
    pq.write_table(pa.table({"uid": [1, 2], "event_time": naive, "x": [1.0, 2.0]}), d / "b.parquet")
    write_defs(
        fws.root,
        """
u = Entity("u", {"uid": "int64"})
v = FeatureView("v", u, Source("rows", path="data/parts/*.parquet"), fields={"x": "float64"})
""",
    )
    with pytest.raises(RoostError, match="'event_time' mixes timezone-naive and tz-aware"):
        apply()
    (d / "b.parquet").unlink()
    pq.write_table(pa.table({"uid": [3], "event_time": pa.array([T0], TS), "x": [3.0]}), d / "b.parquet")
    apply()


def test_naive_timestamp_field_needs_a_timezone(fws):
    """A naive timestamp *field* is refused like a naive time column, and localised by Source(timezone=...)."""
    from zoneinfo import ZoneInfo

    from roost.features import apply, training_set

    seen = [datetime(2024, 3, 31, 1, 30), datetime(2024, 7, 1, 12, 0)]  # winter and summer time in Paris
    tbl = _int_rows([1, 2], [1.0, 2.0]).append_column("seen", pa.array(seen, pa.timestamp("us")))
    pq.write_table(tbl, fws.root / "data" / "rows.parquet")
    body = """
u = Entity("u", {{"uid": "int64"}})
v = FeatureView("v", u, Source("rows", path="data/rows.parquet"{tz}), fields={{"seen": "timestamp"}})
"""
    write_defs(fws.root, body.format(tz=""))
    with pytest.raises(RoostError, match="field 'seen'.*naive"):
        apply()
    write_defs(fws.root, body.format(tz=", timezone='Europe/Paris'"))
    apply()
    out = training_set(_ents([1, 2], T0 + timedelta(days=90)), ["v:seen"], output="arrow")
    want = [t.replace(tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC) for t in seen]
    assert out.column("seen").to_pylist() == want


def test_transform_output_mixing_naive_and_aware_is_refused(fws):
    from roost.features import apply, training_set

    _write(fws.root, _int_rows([1, 2], [1.0, 2.0]))
    (fws.root / "features" / "tx.py").write_text(
        "import datetime as dt\n"
        "from roost.features import Entity, FeatureView, Source\n"
        "def stamp(df):\n"
        "    base = dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))\n"
        "    import pandas as pd\n"
        "    return pd.DataFrame({'at': [base if i == 0 else base.replace(tzinfo=None) for i in range(len(df))]},"
        " dtype=object)\n"
        "u = Entity('u', {'uid': 'int64'})\n"
        "v = FeatureView('v', u, Source('rows', path='data/rows.parquet'), fields={'at': 'timestamp'},"
        " transform=stamp)\n"
    )
    with pytest.raises(RoostError, match="mixes timezone-naive and tz-aware"):
        apply()
        training_set(_ents([1, 2], T0 + timedelta(hours=1)), ["v:at"])
