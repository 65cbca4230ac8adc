"""roost.predict on Ray Data (map_batches, pyarrow batches): equal to load_model().predict."""

import threading

import numpy as np
import pytest
from predictkit import expected, make_frame, read_output, write_parquet

import roost
from roost.errors import RoostError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU local Ray (no dashboard), shut down at the end; skipped when it cannot start within 180 s."""
    ray = pytest.importorskip("ray")
    box: dict = {}

    def start():
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            box["ok"] = True
        except Exception as exc:
            box["error"] = exc

    t = threading.Thread(target=start, daemon=True)
    t.start()
    t.join(180)
    if not box.get("ok"):
        pytest.skip(f"Ray did not start on this machine within 180 s: {box.get('error', 'timeout')}")
    yield ray
    ray.shutdown()


def test_ray_equals_load_model(ray_cluster, model, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    df = make_frame(1500, seed=5)
    write_parquet(df.iloc[:900], d / "a.parquet", 300)
    write_parquet(df.iloc[900:], d / "b.parquet", 300)
    out = tmp_path / "scores"
    res = roost.predict(model, d, out, engine="ray", columns=["user_id"], batch_size=256)
    got = read_output(out)
    assert list(got.columns) == ["user_id", "probability"]
    assert got["user_id"].tolist() == df["user_id"].tolist()
    np.testing.assert_allclose(got["probability"], expected(model, df), atol=1e-6, rtol=0)
    assert res.rows_out == len(df) and roost.get_run(res.run_id)["params"]["engine"] == "ray"
    with pytest.raises(RoostError, match="not SQL"):
        roost.predict(model, "sql:SELECT 1", tmp_path / "o2", engine="ray", record=False)
