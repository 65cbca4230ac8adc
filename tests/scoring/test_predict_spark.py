"""roost.predict on a real local SparkSession (mapInArrow): equal to load_model().predict; clear missing-Java error."""

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark(local_spark):
    """One local[2] SparkSession for the module (UI off), stopped at the end."""
    s = local_spark("roost-predict-test")
    yield s
    s.stop()


def test_spark_equals_load_model(spark, model, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    frames = [make_frame(1200, seed=1), make_frame(500, seed=2)]
    for i, df in enumerate(frames):
        write_parquet(df, d / f"day{i}.parquet", row_group_size=300)
    df = np.concatenate([f["user_id"].to_numpy() for f in frames])
    import pandas as pd

    full = pd.concat(frames, ignore_index=True).sort_values("user_id").reset_index(drop=True)
    out = tmp_path / "scores"
    res = roost.predict(model, d, out, engine="spark", columns=["user_id", "tag"], spark=spark)
    got = read_output(out)
    assert list(got.columns) == ["user_id", "tag", "probability"]
    assert got["user_id"].tolist() == sorted(df.tolist()) and got["tag"].tolist() == full["tag"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, full), atol=1e-6, rtol=0)
    assert res.rows_in == res.rows_out == len(full) and res.parts >= 1
    run = roost.get_run(res.run_id)
    assert run["params"]["engine"] == "spark" and run["metrics"]["rows_out"] == len(full)
    # a rerun of complete output does no Spark job and keeps the files
    again = roost.predict(model, d, out, engine="spark", columns=["user_id", "tag"], spark=spark)
    assert again.parts_skipped == again.parts == res.parts


def test_spark_without_java_says_so(model, tmp_path, monkeypatch):
    pytest.importorskip("pyspark")
    write_parquet(make_frame(10), tmp_path / "x.parquet", 10)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    from roost.scoring.spark_engine import require_spark

    with pytest.raises(RoostError, match="Java") as exc:
        require_spark()
    assert "openjdk-17-jre-headless" in exc.value.hint


def test_spark_keeps_a_timestamp_column(spark, model, tmp_path):
    """A kept timestamp column (the default keeps every input column) passes through unchanged (#23 docs)."""
    import pandas as pd

    df = make_frame(300, seed=3)
    df["event_time"] = pd.date_range("2024-01-01", periods=len(df), freq="min", tz="UTC")
    write_parquet(df, tmp_path / "in.parquet", row_group_size=100)
    res = roost.predict(model, tmp_path / "in.parquet", tmp_path / "s", engine="spark", spark=spark)
    got = read_output(tmp_path / "s").sort_values("event_time").reset_index(drop=True)
    assert res.rows_out == len(df)
    t = got["event_time"]  # Spark's writer stores instants as INT96, read back without a zone: UTC
    assert (t.dt.tz_localize("UTC") if t.dt.tz is None else t).tolist() == df["event_time"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)


def test_spark_sql_input_reads_named_inputs_and_runs_only_a_query(spark, model, tmp_path):
    """Issue 30 item 10 on Spark: a named input is a temp view; a command (CREATE, INSERT, SET, several
    statements) or a file read by path (parquet.`/path`) is refused before anything runs."""
    df = make_frame(400, seed=9)
    f = tmp_path / "users.parquet"
    write_parquet(df, f, 100)
    q = "sql:SELECT * FROM users WHERE user_id % 2 = 1"
    roost.predict(model, q, tmp_path / "o", engine="spark", columns=["user_id"], tables={"users": f}, spark=spark)
    got = read_output(tmp_path / "o").sort_values("user_id").reset_index(drop=True)
    ref = df[df["user_id"] % 2 == 1].sort_values("user_id").reset_index(drop=True)
    assert got["user_id"].tolist() == ref["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)
    made = tmp_path / "made"
    for bad in (
        f"CREATE TABLE t USING parquet LOCATION '{made}' AS SELECT * FROM users",
        "SELECT * FROM users; SELECT * FROM users",
        "SET spark.sql.runSQLOnFiles=true",
        f"SELECT * FROM parquet.`{f}`",
    ):
        with pytest.raises(RoostError):
            roost.predict(
                model,
                "sql:" + bad,
                tmp_path / "o2",
                engine="spark",
                columns=["user_id"],  # no DuckDB probe for the columns: Spark itself reads the query
                tables={"users": f},
                spark=spark,
                record=False,
            )
        assert not made.exists(), bad
    assert spark.conf.get("spark.sql.runSQLOnFiles") == "true"  # the caller's session is left as it was


def test_spark_reports_progress_over_parts(spark, model, tmp_path):
    """#37 item 6: the Spark engine feeds roost's progress callback (tasks of the write = parts), ending at n/n."""
    write_parquet(make_frame(600, seed=6), tmp_path / "in.parquet", row_group_size=200)
    seen: list[tuple[int, int | None]] = []
    res = roost.predict(
        model,
        tmp_path / "in.parquet",
        tmp_path / "o",
        engine="spark",
        spark=spark,
        record=False,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen, "no progress reported"
    assert seen[-1] == (res.parts, res.parts)
    assert all(total is None or 0 <= done <= total for done, total in seen)
    assert res.engine_start_seconds is None  # the caller's session: nothing was started
