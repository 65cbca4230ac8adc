"""Hostile input to roost.predict: corrupt, empty or mistyped files, bad SQL and bad output paths are RoostErrors
that name the problem (no pyarrow/duckdb traceback), and a SIGKILLed job resumes to the exact output."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError


@pytest.fixture
def good(tmp_path):
    """A 600-row Parquet file (row groups of 100) and its frame."""
    df = make_frame(600, seed=5)
    write_parquet(df, tmp_path / "good.parquet", 100)
    return tmp_path / "good.parquet", df


@pytest.mark.parametrize("columns", [None, ["user_id"]])
def test_truncated_or_garbage_parquet_names_the_file(model, good, tmp_path, columns):
    data = good[0].read_bytes()
    (tmp_path / "torn.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    for name in ("torn.parquet", "junk.parquet"):
        with pytest.raises(RoostError, match=name):
            roost.predict(model, tmp_path / name, tmp_path / f"o-{name}", columns=columns, record=False)


def test_empty_csv_is_a_clear_error(model, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RoostError, match=r"empty\.csv"):
        roost.predict(model, tmp_path / "empty.csv", tmp_path / "o", record=False)


def test_text_in_a_numeric_model_column_is_refused(model, good, tmp_path):
    # the model's f1 is float64: a column of words must not score as NaN for every row
    df = good[1].assign(f1="x")
    df.to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(RoostError, match="f1") as exc:
        roost.predict(model, tmp_path / "words.csv", tmp_path / "o", record=False)
    assert "float" in str(exc.value)
    assert not list((tmp_path / "o").glob("part-*.parquet"))


def test_text_late_in_a_numeric_csv_column_is_a_clear_error(model, tmp_path):
    # the first block infers f1 as a number; a word 5 MB in fails in the reader, which must say where
    df = make_frame(60_000, seed=6)
    df["f1"] = df["f1"].astype(object)
    df.loc[len(df) - 1, "f1"] = "oops"
    df.to_csv(tmp_path / "late.csv", index=False)
    with pytest.raises(RoostError, match=r"late\.csv"):
        roost.predict(model, tmp_path / "late.csv", tmp_path / "o", record=False)


def test_nan_features_score_as_the_model_does(model, good, tmp_path):
    # missing values are data, not an error: the output equals load_model on the same rows
    df = good[1].copy()
    df.loc[[3, 7], "f1"] = np.nan
    df.to_csv(tmp_path / "nan.csv", index=False)
    roost.predict(model, tmp_path / "nan.csv", tmp_path / "o", columns=["user_id"], record=False)
    got = read_output(tmp_path / "o")
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)


def test_bad_sql_is_a_clear_error(model, tmp_path):
    for cols in (None, ["user_id"]):
        with pytest.raises(RoostError, match="SELEC"):
            roost.predict(model, "sql:SELEC nonsense", tmp_path / "o", columns=cols, record=False)


def test_output_that_is_a_file_or_under_one_is_refused(model, good, tmp_path):
    f = tmp_path / "afile.txt"
    f.write_text("x")
    for out in (f, f / "sub"):
        with pytest.raises(RoostError, match="afile"):
            roost.predict(model, good[0], out, record=False)
    assert f.read_text() == "x"


def test_workers_below_one_are_refused(model, good, tmp_path):
    for w in (0, -3):
        with pytest.raises(RoostError, match="workers"):
            roost.predict(model, good[0], tmp_path / "o", workers=w, record=False)


def test_cli_hostile_inputs_exit_2_without_traceback(model, tmp_path):
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 nope")
    env = {**os.environ, "PYTHONPATH": ""}
    roost_bin = Path(sys.executable).with_name("roost")
    res = subprocess.run(
        [str(roost_bin), "predict", model, "-i", str(tmp_path / "junk.parquet"), "-o", str(tmp_path / "o"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "junk.parquet" in res.stderr


@pytest.mark.slow
def test_sigkill_mid_job_then_rerun_gives_exact_output(model, tmp_path):
    """A job killed -9 while writing parts, rerun: every row once, equal to load_model, in the planned parts."""
    d = tmp_path / "in"
    d.mkdir()
    df = make_frame(40_000, seed=7)
    write_parquet(df, d / "big.parquet", 500)
    out = tmp_path / "scores"
    roost_bin = Path(sys.executable).with_name("roost")
    args = [str(roost_bin), "predict", model, "-i", str(d), "-o", str(out), "--columns", "user_id"]
    args += ["--rows-per-part", "500", "--batch-size", "50", "-j", "1", "-q"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # hang guard only: the kill lands once a few parts exist
        while len(list(out.glob("part-*.parquet"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is not None:
            pytest.skip("the job finished before it could be killed")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    done = len(list(out.glob("part-*.parquet")))
    assert 3 <= done < 80 and not (out / "_SUCCESS").exists()
    res = roost.predict(model, d, out, columns=["user_id"], rows_per_part=500, batch_size=50, record=False)
    assert res.parts == 80 and res.parts_skipped >= 3 and res.rows_out == len(df)
    assert not list(out.glob(".*.tmp"))
    got = read_output(out)
    assert got["user_id"].tolist() == sorted(df["user_id"].tolist())  # no duplicate, no missing row
    ref = df.sort_values("user_id").reset_index(drop=True)
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)


@pytest.mark.parametrize("engine", ["spark", "ray"])
def test_torn_or_mistyped_input_is_refused_before_any_engine_starts(model, good, tmp_path, engine):
    # was a Java stack trace (Spark) after a session start: the files are checked where the local engine checks them
    data = good[0].read_bytes()
    (tmp_path / "torn.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(RoostError, match=r"torn\.parquet"):
        roost.predict(
            model, tmp_path / "torn.parquet", tmp_path / "o1", engine=engine, columns=["user_id"], record=False
        )
    good[1].assign(f1="x").to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(RoostError, match="f1"):
        roost.predict(model, tmp_path / "words.csv", tmp_path / "o2", engine=engine, columns=["user_id"], record=False)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RoostError, match=r"empty\.csv"):
        roost.predict(model, tmp_path / "empty.csv", tmp_path / "o3", engine=engine, columns=["user_id"], record=False)


def test_huge_batch_size_and_repeated_columns(model, good, tmp_path):
    with pytest.raises(RoostError, match="batch_size"):
        roost.predict(model, good[0], tmp_path / "o1", batch_size=10**20, record=False)
    # a column named twice is kept once (duplicate names make the parts unreadable by pandas and Arrow datasets)
    roost.predict(model, good[0], tmp_path / "o2", columns=["user_id", "user_id"], record=False)
    got = read_output(tmp_path / "o2")
    assert list(got.columns) == ["user_id", "probability"] and len(got) == len(good[1])


@pytest.mark.slow
def test_spark_sql_syntax_error_is_a_clear_error(model, tmp_path):
    pytest.importorskip("pyspark")
    with pytest.raises(RoostError, match="SELEC"):
        roost.predict(model, "sql:SELEC nonsense", tmp_path / "o", engine="spark", columns=["user_id"], record=False)
