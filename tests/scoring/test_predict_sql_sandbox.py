"""`sql:` inputs are one read-only SELECT over the named inputs (issue 30, item 10): before, `sql:SELECT 1; COPY ...
TO 'file'` wrote files and `read_text('/etc/passwd')` read them, with the caller's rights — harmless typed by the
user, not when the text comes from a pipeline parameter or another user."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError


@pytest.fixture
def users(tmp_path):
    df = make_frame(600, seed=5)
    f = tmp_path / "users.parquet"
    write_parquet(df, f, 200)
    return f, df


def test_a_select_over_a_named_input_scores_like_the_filtered_frame(model, users, tmp_path):
    f, df = users
    q = "sql:SELECT * FROM users WHERE user_id % 3 = 0 ORDER BY user_id"
    res = roost.predict(model, q, tmp_path / "o", columns=["user_id"], tables={"users": f}, record=False)
    got = read_output(tmp_path / "o")
    ref = df[df["user_id"] % 3 == 0].sort_values("user_id").reset_index(drop=True)
    assert got["user_id"].tolist() == ref["user_id"].tolist() and res.rows_out == len(ref)
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)


def test_a_named_csv_input_and_a_folder_of_parquet(model, tmp_path):
    a, b = make_frame(300, seed=6), make_frame(200, seed=7)
    d = tmp_path / "days"
    d.mkdir()
    write_parquet(a, d / "a.parquet", 100)
    write_parquet(b, d / "b.parquet", 100)
    a.to_csv(tmp_path / "a.csv", index=False)
    q = "sql:SELECT d.* FROM days d JOIN a_csv c USING (user_id) ORDER BY user_id"
    roost.predict(model, q, tmp_path / "o", columns=["user_id"], tables={"days": d, "a_csv": tmp_path / "a.csv"})
    got = read_output(tmp_path / "o")
    ref = a.sort_values("user_id").reset_index(drop=True)
    assert got["user_id"].tolist() == ref["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)


def test_the_named_files_can_be_read_by_path_too(model, users, tmp_path):
    """A named input's own file stays readable (read_parquet/read_csv with DuckDB's options), nothing else."""
    f, df = users
    q = f"sql:SELECT * FROM read_parquet('{f}') ORDER BY user_id"
    roost.predict(model, q, tmp_path / "o", columns=["user_id"], tables={"users": f}, record=False)
    assert read_output(tmp_path / "o")["user_id"].tolist() == sorted(df["user_id"].tolist())


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT * FROM users; SELECT * FROM users", "one SELECT"),
        ("SELECT * FROM users; COPY (SELECT 1) TO '{out}'", "one SELECT"),
        ("COPY (SELECT * FROM users) TO '{out}'", "COPY"),
        ("ATTACH '{out}' AS x", "ATTACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CREATE TABLE t AS SELECT * FROM users", "CREATE"),
        ("EXPLAIN SELECT * FROM users", "EXPLAIN"),
    ],
)
def test_anything_but_one_select_is_refused(model, users, tmp_path, query, words):
    f, _ = users
    out = tmp_path / "written.csv"
    with pytest.raises(RoostError) as e:
        roost.predict(model, "sql:" + query.format(out=out), tmp_path / "o", tables={"users": f}, record=False)
    assert words in e.value.message and "SELECT" in e.value.message, e.value.message
    assert not out.exists()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT content AS user_id FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('{other}')",
        "SELECT * FROM '{other}'",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_json('http://127.0.0.1:9/x.json')",
    ],
)
def test_files_that_are_not_named_inputs_are_refused(model, users, tmp_path, query):
    f, df = users
    other = tmp_path / "other.parquet"
    write_parquet(df, other, 200)
    with pytest.raises(RoostError) as e:
        roost.predict(model, "sql:" + query.format(other=other), tmp_path / "o", tables={"users": f}, record=False)
    assert "named input" in e.value.message or "named input" in (e.value.hint or ""), (e.value.message, e.value.hint)
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_python_objects_of_the_caller_are_not_tables(model, users, tmp_path):
    """DuckDB's Python replacement scans would read a DataFrame variable named in the query; they are off."""
    f, df = users
    secret = df  # noqa: F841 (a local DuckDB could scan by name)
    with pytest.raises(RoostError):
        roost.predict(model, "sql:SELECT * FROM secret", tmp_path / "o", tables={"users": f}, record=False)


def test_cli_takes_named_inputs_and_refuses_a_copy(model, users, tmp_path, ws):
    f, df = users
    out = tmp_path / "pwned.csv"
    base = [sys.executable, "-m", "roost", "predict", model, "--table", f"users={f}", "--columns", "user_id"]
    bad = subprocess.run(
        [*base, "-i", f"sql:SELECT * FROM users; COPY (SELECT 1) TO '{out}'", "-o", str(tmp_path / "o1")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ws.root,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "one SELECT" in bad.stderr, bad.stderr[-600:]
    assert not out.exists()
    ok = subprocess.run(
        [*base, "-i", "sql:SELECT * FROM users WHERE user_id < 100", "-o", str(tmp_path / "o2")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ws.root,
    )
    assert ok.returncode == 0, ok.stderr[-600:]
    assert sorted(read_output(tmp_path / "o2")["user_id"]) == sorted(df[df["user_id"] < 100]["user_id"])


def test_table_names_are_checked(model, users, tmp_path):
    f, _ = users
    for tables, words in [
        ({"bad name": f}, "table name"),
        ({"users": tmp_path / "nothing-here.parquet"}, "no input files"),
    ]:
        with pytest.raises(RoostError, match=words):
            roost.predict(model, "sql:SELECT * FROM users", tmp_path / "o", tables=tables, record=False)
    with pytest.raises(RoostError, match="sql:"):
        roost.predict(model, f, tmp_path / "o", tables={"users": f}, record=False)


def test_without_named_inputs_a_query_can_neither_write_nor_read_files(model, users, tmp_path):
    """Today's form, no `tables`: `sql:...; COPY ... TO` wrote the file and read_parquet read any path."""
    f, _ = users
    out = tmp_path / "written.csv"
    for q in (f"SELECT * FROM read_parquet('{f}'); COPY (SELECT 42 AS x) TO '{out}'", f"COPY (SELECT 42) TO '{out}'"):
        with pytest.raises(RoostError):
            roost.predict(model, "sql:" + q, tmp_path / "o", record=False)
        assert not out.exists(), q
    with pytest.raises(RoostError) as e:
        roost.predict(model, f"sql:SELECT * FROM read_parquet('{f}')", tmp_path / "o", record=False)
    assert "named input" in e.value.message + (e.value.hint or "")
