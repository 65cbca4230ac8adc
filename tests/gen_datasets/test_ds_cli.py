"""`roost datasets make` and `roost datasets show` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from roost.cli.main import build_app
from roost.errors import RoostError


def _invoke(*args: str):
    return CliRunner().invoke(build_app(), list(args), catch_exceptions=True)


def test_make_engagement_writes_files_and_prints_row_counts(tmp_path: Path) -> None:
    out = tmp_path / "eng"
    res = _invoke("datasets", "make", "engagement", "--rows", "3000", "--out", str(out), "--seed", "2")
    assert res.exit_code == 0, res.output
    for name in ("users", "items", "impressions", "train", "items_latest"):
        assert (out / f"{name}.parquet").exists()
        assert f"{name}.parquet" in res.stdout
    assert "3,000" in res.stdout  # impressions and train rows
    assert len(pd.read_parquet(out / "train.parquet")) == 3000


def test_make_json_and_scale_options(tmp_path: Path) -> None:
    res = _invoke(
        "datasets",
        "make",
        "engagement",
        "-n",
        "1000",
        "-o",
        str(tmp_path),
        "--users",
        "7",
        "--items",
        "5",
        "--days",
        "3",
        "--json",
    )
    assert res.exit_code == 0, res.output
    rows = {r["table"]: r["rows"] for r in json.loads(res.stdout)}
    assert rows == {"users": 7 * 4, "items": 5 * 4, "impressions": 1000, "train": 1000, "items_latest": 5}


def test_make_unknown_generator_suggests() -> None:
    res = _invoke("datasets", "make", "engagment", "--out", "x")
    assert isinstance(res.exception, RoostError)
    assert "engagment" in res.exception.message and "engagement" in (res.exception.hint or "")


def test_make_rejects_bad_rows(tmp_path: Path) -> None:
    res = _invoke("datasets", "make", "engagement", "--rows", "0", "--out", str(tmp_path))
    assert res.exit_code == 2 and not list(tmp_path.iterdir())


def test_show_prints_shape_dtypes_and_head(tmp_path: Path) -> None:
    df = pd.DataFrame({"alpha": [1, 2, 3, 4, 5, 6], "beta": ["x", "y", None, "w", "v", "u"]})
    df.to_parquet(tmp_path / "t.parquet", index=False)
    res = _invoke("datasets", "show", str(tmp_path / "t.parquet"), "--rows", "2")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "6 rows x 2 columns" in out
    for token in ("alpha", "beta", "int64", "str", "row 0", "row 1"):
        assert token in out, token
    assert "row 2" not in out


def test_show_json_sklearn() -> None:
    res = _invoke("datasets", "show", "sklearn:wine", "--json", "-n", "3")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["rows"], doc["columns"]) == (178, 14)
    assert doc["dtypes"]["target"] == "int64" and len(doc["head"]) == 3 and len(doc["fingerprint"]) == 64


def test_show_engagement_and_missing_values() -> None:
    res = _invoke("datasets", "show", "engagement:2000:1", "--json", "--rows", "1")
    doc = json.loads(res.stdout)
    assert doc["rows"] == 2000 and doc["nulls"]["avg_session_min"] > 0
    assert doc["dtypes"]["event_time"] == "datetime64[us, UTC]"


@pytest.mark.parametrize(
    "source,needle", [("nope.parquet", "nope.parquet"), ("duckdb:SELEC 1", "SQL error"), ("sklearn:wines", "wine")]
)
def test_show_errors_are_roost_errors(source: str, needle: str) -> None:
    res = _invoke("datasets", "show", source)
    assert isinstance(res.exception, RoostError) and needle in str(res.exception)


def test_main_prints_error_and_exits_2(capsys, tmp_path: Path) -> None:
    from roost.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["datasets", "show", str(tmp_path / "missing.csv")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "hint" in err
