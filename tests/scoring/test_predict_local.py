"""roost.predict on the local engine: equal to load_model().predict, parts, resume, the recorded run, errors."""

import json

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError


@pytest.fixture
def inputs(tmp_path):
    """Two Parquet files (1,500 + 700 rows, row groups of 250) in one folder."""
    d = tmp_path / "in"
    d.mkdir()
    frames = [make_frame(1500, seed=1), make_frame(700, seed=2)]
    for i, df in enumerate(frames):
        write_parquet(df, d / f"day{i}.parquet", row_group_size=250)
    import pandas as pd

    return d, pd.concat(frames, ignore_index=True).sort_values("user_id").reset_index(drop=True)


def test_local_equals_load_model_and_records_a_run(model, inputs, tmp_path):
    d, df = inputs
    out = tmp_path / "scores"
    res = roost.predict(model, str(d / "*.parquet"), out, columns=["user_id"], rows_per_part=500, batch_size=100)
    got = read_output(out)
    assert list(got.columns) == ["user_id", "probability"]
    assert got["user_id"].tolist() == df["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
    # 1,500 rows in groups of 250 -> 3 parts of 500; 700 rows -> 500 + 200
    assert res.parts == 5 and sorted(p.name for p in out.glob("part-*.parquet"))[-1] == "part-00004.parquet"
    assert res.rows_in == res.rows_out == len(df) and res.model_version == "churn/1"
    run = roost.get_run(res.run_id)
    assert run["experiment"] == "predict" and run["status"] == "FINISHED"
    assert run["params"]["model_version"] == "churn/1" and run["params"]["engine"] == "local"
    assert run["params"]["fingerprint"] == res.fingerprint
    assert run["metrics"]["rows_out"] == len(df) and run["metrics"]["seconds"] > 0


def test_default_keeps_every_input_column(model, inputs, tmp_path):
    d, df = inputs
    roost.predict(model, d, tmp_path / "o", record=False)
    got = read_output(tmp_path / "o")
    assert list(got.columns) == [*df.columns, "probability"]
    assert got["tag"].tolist() == df["tag"].tolist()


def test_csv_and_sql_inputs_equal_load_model(model, tmp_path):
    df = make_frame(900, seed=3)
    csv = tmp_path / "users.csv"
    df.to_csv(csv, index=False)
    pq_file = tmp_path / "users.parquet"
    write_parquet(df, pq_file, 300)
    ref = expected(model, df)
    roost.predict(model, csv, tmp_path / "from_csv", columns=["user_id"], record=False)
    got = read_output(tmp_path / "from_csv")
    np.testing.assert_allclose(got["probability"], ref, atol=1e-6, rtol=0)
    q = "sql:SELECT * FROM users WHERE user_id % 2 = 0 ORDER BY user_id"
    res = roost.predict(
        model,
        q,
        tmp_path / "from_sql",
        columns=["user_id"],
        rows_per_part=200,
        batch_size=64,
        tables={"users": pq_file},
    )
    got = read_output(tmp_path / "from_sql")
    even = df[df["user_id"] % 2 == 0].reset_index(drop=True)
    assert got["user_id"].tolist() == even["user_id"].tolist() and res.parts == 3
    np.testing.assert_allclose(got["probability"], expected(model, even), atol=1e-6, rtol=0)


def test_rerun_resumes_by_part(model, inputs, tmp_path):
    d, df = inputs
    out = tmp_path / "scores"
    first = roost.predict(model, d, out, columns=["user_id"], rows_per_part=500, record=False)
    assert first.parts_skipped == 0
    # an interrupted run: one part missing, a temp file left, the output not marked complete
    (out / "part-00002.parquet").unlink()
    (out / ".part-00002.parquet.dead.tmp").write_bytes(b"torn")
    (out / "_SUCCESS").unlink()
    m = json.loads((out / "_roost_predict.json").read_text())
    (out / "_roost_predict.json").write_text(json.dumps({**m, "complete": False}))
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    again = roost.predict(model, d, out, columns=["user_id"], rows_per_part=500, record=False)
    assert again.parts == 5 and again.parts_skipped == 4 and again.rows_out == len(df)
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before  # done parts untouched
    got = read_output(out)
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
    # complete: a third run does nothing
    third = roost.predict(model, d, out, columns=["user_id"], rows_per_part=500, record=False)
    assert third.parts_skipped == third.parts == 5


def test_other_input_into_same_output_is_refused(model, inputs, tmp_path):
    d, df = inputs
    out = tmp_path / "scores"
    roost.predict(model, d / "day0.parquet", out, columns=["user_id"], record=False)
    with pytest.raises(RoostError, match="another run") as exc:
        roost.predict(model, d / "day1.parquet", out, columns=["user_id"], record=False)
    assert "--overwrite" in exc.value.hint
    roost.predict(model, d / "day1.parquet", out, columns=["user_id"], record=False, overwrite=True)
    assert len(read_output(out)) == 700


def test_user_errors_name_the_problem(model, inputs, tmp_path):
    d, df = inputs
    with pytest.raises(RoostError, match="nope"):
        roost.predict(model, d, tmp_path / "o1", columns=["user_id", "nope"], record=False)
    df.drop(columns=["f3"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RoostError, match="f3"):
        roost.predict(model, tmp_path / "bad.parquet", tmp_path / "o2", record=False)
    with pytest.raises(RoostError, match="no input files"):
        roost.predict(model, tmp_path / "missing/*.parquet", tmp_path / "o3", record=False)
    with pytest.raises(RoostError, match="unknown engine"):
        roost.predict(model, d, tmp_path / "o4", engine="dask", record=False)
    df.assign(probability=0.5).to_parquet(tmp_path / "scored.parquet")
    with pytest.raises(RoostError, match="clash"):
        roost.predict(model, tmp_path / "scored.parquet", tmp_path / "o5", record=False)


def test_cli_predict(model, inputs, tmp_path, cli):
    d, df = inputs
    code, out, err = cli("predict", model, "--input", str(d), "--output", str(tmp_path / "c"), "--columns", "user_id")
    assert code == 0, err
    assert f"scored {len(df):,} rows with churn/1" in out
    code, out, err = cli("predict", model, "-i", str(d), "-o", str(tmp_path / "c"), "--columns", "user_id", "--json")
    assert code == 0 and json.loads(out)["parts_skipped"] == json.loads(out)["parts"]


def test_cli_predict_records_into_the_experiment_given(model, inputs, tmp_path, cli):
    """`roost predict -e X` records its run in X (it was always `predict`) (#37)."""
    d, _ = inputs
    code, out, err = cli("predict", model, "-i", str(d), "-o", str(tmp_path / "e"), "-e", "scoring", "--json")
    assert code == 0, err
    assert roost.get_run(json.loads(out)["run_id"])["experiment"] == "scoring"
