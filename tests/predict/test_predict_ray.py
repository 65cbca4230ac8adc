"""roost.predict on Ray Data (map_batches, pyarrow batches): equal to load_model().predict."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(pgid: int) -> None:
    """TERM the head's process group; KILL what is left after a 3 s grace period (no wait once it is gone)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU `ray start --head` (no dashboard) in its own process group, connected to; skipped with the reason
    when it cannot start within 240 s (an in-process ray.init that misses Ray's own startup deadline later kills
    the whole process, so the head runs apart)."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip(f"no ray CLI next to {sys.executable}")
    tmp = tempfile.mkdtemp(prefix="rp", dir="/tmp")  # short: Ray's unix socket paths must stay < 108 chars
    port = _free_port()
    cmd = [str(ray_bin), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--num-cpus", "2"]
    cmd += ["--include-dashboard=false", "--disable-usage-stats", "--temp-dir", tmp]
    for flag in ("--ray-client-server-port", "--dashboard-agent-listen-port", "--metrics-export-port"):
        cmd += [flag, str(_free_port())]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "RAY_"))}
    env["RAY_AUTH_MODE"] = "disabled"  # a loopback test head: the driver below connects without a token
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    p = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        try:
            out, _ = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.skip("Ray did not start on this machine within 240 s")
        if p.returncode != 0:
            pytest.skip(f"Ray did not start on this machine: {out[-500:]}")
        # The driver runs in a child process: a ray.init in the pytest process leaves Ray state behind that later
        # in-process Ray users (tests/tune/test_tune_ray.py's CLI) pick up and connect with to the wrong node.
        yield f"127.0.0.1:{port}"
    finally:
        _stop_group(p.pid)
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth
        shutil.rmtree(tmp, ignore_errors=True)


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
        "print(json.dumps({'run_id': res.run_id, 'rows_out': res.rows_out}))\n"
    )
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # the child runs in the test workspace (the cwd)
    p = subprocess.run(
        [sys.executable, "-c", driver, ray_cluster, str(model), str(d), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = SimpleNamespace(**json.loads(p.stdout.strip().splitlines()[-1]))
    got = read_output(out)
    assert list(got.columns) == ["user_id", "probability"]
    assert got["user_id"].tolist() == df["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
    assert res.rows_out == len(df) and roost.get_run(res.run_id)["params"]["engine"] == "ray"
    with pytest.raises(RoostError, match="not SQL"):
        roost.predict(model, "sql:SELECT 1", tmp_path / "o2", engine="ray", record=False)
