"""roost.predict on Ray Data (map_batches, pyarrow batches): equal to load_model().predict."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import rayhead
import roost
from roost.errors import RoostError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU `ray start --head` (no dashboard) in its own process group. The driver runs in a child process:
    a ray.init in the pytest process leaves Ray state behind that later in-process Ray users (the CLI of
    tests/tune/test_tune_ray.py) pick up and connect with to the wrong node."""
    with rayhead.ray_head("rp") as address:
        yield address


def test_ray_equals_load_model(ray_cluster, model, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    df = make_frame(1500, seed=5)
    write_parquet(df.iloc[:900], d / "a.parquet", 300)
    write_parquet(df.iloc[900:], d / "b.parquet", 300)
    out = tmp_path / "scores"
    driver = (
        "import json, sys, ray, roost\n"
        "ray.init(address=sys.argv[1], log_to_driver=False)\n"
        "res = roost.predict(sys.argv[2], sys.argv[3], sys.argv[4], engine='ray', columns=['user_id'],"
        " batch_size=256)\n"
        "open(sys.argv[5], 'w').write(json.dumps({'run_id': res.run_id, 'rows_out': res.rows_out}))\n"
    )  # the result goes to a file: Ray's raylet writes to stdout too (e.g. when a worker dies and a task is retried)
    result = tmp_path / "result.json"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # the child runs in the test workspace (the cwd)
    p = subprocess.run(
        [sys.executable, "-c", driver, ray_cluster, str(model), str(d), str(out), str(result)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = SimpleNamespace(**json.loads(result.read_text()))
    got = read_output(out)
    assert list(got.columns) == ["user_id", "probability"]
    assert got["user_id"].tolist() == df["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
    assert res.rows_out == len(df) and roost.get_run(res.run_id)["params"]["engine"] == "ray"
    with pytest.raises(RoostError, match="not SQL"):
        roost.predict(model, "sql:SELECT 1", tmp_path / "o2", engine="ray", record=False)


def test_cli_ray_is_quiet_and_reports_the_start_cost(ray_cluster, model, tmp_path):
    """#37 item 6 on Ray: `roost predict --engine ray` prints roost's summary only (no Ray/Ray Data INFO or WARNING
    log lines, no Ray Data progress) and says what connecting to Ray cost."""
    import re

    df = make_frame(700, seed=7)
    write_parquet(df, tmp_path / "in.parquet", 350)
    out = tmp_path / "scores"
    env = {**rayhead.head_env(), "RAY_ADDRESS": ray_cluster}
    p = subprocess.run(
        [sys.executable, "-m", "roost", "predict", model, "-i", str(tmp_path / "in.parquet"), "-o", str(out)]
        + ["--engine", "ray", "--columns", "user_id"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    both = p.stdout + p.stderr
    assert p.returncode == 0, both[-3000:]
    for word in ("WARN", "INFO", "Running Dataset", "Progress"):
        assert word not in both, f"{word!r} in the output:\n{both[-3000:]}"
    assert p.stderr.strip() == "", p.stderr[-3000:]
    assert re.search(r"Ray started in \d+\.\ds", p.stdout), p.stdout
    got = read_output(out)
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
