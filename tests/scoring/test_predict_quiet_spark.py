"""#37 item 6: `roost predict --engine spark` prints roost's own lines only — no JVM/log4j warnings, no pandas
FutureWarnings from PySpark, no Spark stage bars — and says what the Spark start cost.

The CLI runs as a real subprocess: its own JVM is the thing under test (a session shared with other tests could
not show what a fresh `roost predict` prints)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

pytestmark = pytest.mark.slow

NOISE = ("WARN", "FutureWarning", "[Stage", "log4j", "setLogLevel")


def test_cli_spark_is_quiet_and_reports_the_start_cost(model, ws, tmp_path):
    pytest.importorskip("pyspark")
    df = make_frame(1000, seed=4)
    write_parquet(df, tmp_path / "in.parquet", row_group_size=250)
    out = tmp_path / "scores"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_"))}
    res = subprocess.run(
        [sys.executable, "-m", "roost", "predict", model, "-i", str(tmp_path / "in.parquet"), "-o", str(out)]
        + ["--engine", "spark", "--columns", "user_id"],
        capture_output=True,
        text=True,
        cwd=ws.root,
        env=env,
        timeout=300,
    )
    both = res.stdout + res.stderr
    assert res.returncode == 0, both
    for word in NOISE:
        assert word not in both, f"{word!r} in the output:\n{both}"
    assert res.stderr.strip() == "", res.stderr
    m = re.search(r"Spark session started in (\d+\.\d)s", res.stdout)
    assert m, res.stdout
    total = float(re.search(r"; (\d+\.\d)s, ", res.stdout).group(1))
    assert 0 < float(m.group(1)) <= total
    got = read_output(out)
    assert got["user_id"].tolist() == sorted(df["user_id"].tolist())
    ref = df.sort_values("user_id").reset_index(drop=True)
    np.testing.assert_allclose(got["probability"], expected(model, ref), atol=1e-6, rtol=0)


def test_a_jvm_that_does_not_start_is_named_with_its_log(tmp_path):
    """The JVM's output goes to a log file, so a JVM that fails to start must not leave only PySpark's
    "Java gateway process exited" behind: the error quotes the JVM's own line and names the log."""
    pytest.importorskip("pyspark")
    code = (
        "from roost.errors import RoostError\n"
        "from roost.spark_session import start\n"
        "try:\n"
        "    start('local[1]', 't', {'spark.driver.extraJavaOptions': '-Xss1k'})\n"
        "except RoostError as e:\n"
        "    print('MESSAGE', e.message)\n"
        "    print('HINT', e.hint)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "SPARK_", "ROOST_"))}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
    )
    assert "MESSAGE" in res.stdout, res.stdout + res.stderr
    assert "stack size" in res.stdout.split("HINT")[0], res.stdout
    log = re.search(r"HINT .*?(/\S+\.log)", res.stdout)
    assert log and "Java Virtual Machine" in open(log.group(1)).read()
