"""`roost train --nproc N`: data-parallel training equals single-process training, rank 0 alone records.

The reference is roost's own single-process loop on the same seed: with dropout off, every DDP step must equal
the full-batch step (the shares' summed gradients are scaled to the batch mean), so the weights, the validation
curve and the test metrics agree to float rounding. Batch sizes are chosen so the last batch holds one row:
rank 1 then steps on an empty share.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import roost
from helpers import mixed_frame
from roost.errors import RoostError

pytestmark = pytest.mark.slow
ROOST = [sys.executable, "-m", "roost"]


@pytest.fixture
def data_file(tmp_path):
    p = tmp_path / "mixed.parquet"
    mixed_frame(720).to_parquet(p)
    return p


def _odd_batch(data_file, label: str) -> int:
    """A batch size that leaves a last batch of one training row."""
    import pandas as pd

    from roost.training.config import load_config
    from roost.training.data import split

    cfg = load_config({"data": str(data_file), "label": label})
    n = len(split(pd.read_parquet(data_file), cfg.split)[0])
    return next(b for b in range(24, n) if n % b == 1)


def _runs() -> list[dict]:
    return roost.search_runs()


@pytest.mark.parametrize("model,label", [("mlp", "clicked"), ("dcn", "score"), ("logreg", "kind")])
def test_ddp_equals_single_process(ws, data_file, model, label) -> None:
    cfg = {
        "data": str(data_file),
        "label": label,
        "features": ["x1", "x2", "color", "user_id"],
        "model": {"type": model, "params": {"solver": "sgd"} if model == "logreg" else {"dropout": 0.0}},
        "trainer": {"epochs": 4, "batch_size": _odd_batch(data_file, label), "seed": 3},
    }
    one = roost.train(cfg)
    before = {r["run_id"] for r in _runs()}
    two = roost.train(cfg, nproc=2)
    new = [r for r in _runs() if r["run_id"] not in before]
    assert [r["run_id"] for r in new] == [two.run_id]  # rank 1 recorded nothing
    run = roost.get_run(two.run_id)
    assert run["tags"]["roost.distributed.world_size"] == "2" and run["tags"]["roost.distributed.backend"] == "gloo"
    h1 = roost.registry.api.metric_history(one.run_id, "val_loss")
    h2 = roost.registry.api.metric_history(two.run_id, "val_loss")
    assert [h["step"] for h in h2] == [h["step"] for h in h1] == [1, 2, 3, 4]  # one point per epoch, not two
    np.testing.assert_allclose([h["value"] for h in h2], [h["value"] for h in h1], rtol=1e-5)
    t1 = roost.registry.api.metric_history(one.run_id, "train_loss")
    t2 = roost.registry.api.metric_history(two.run_id, "train_loss")
    np.testing.assert_allclose([h["value"] for h in t2], [h["value"] for h in t1], rtol=1e-5)  # over all shares
    for k, v in one.metrics.items():
        assert two.metrics[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    held = mixed_frame(300, seed=11)
    p1 = roost.load_model(str(one.package_path)).predict(held)
    p2 = roost.load_model(str(two.package_path)).predict(held)
    np.testing.assert_allclose(p2, p1, atol=1e-5)
    assert not np.allclose(p1, p1.mean())  # a model that learned something


def test_ddp_with_dropout_trains_an_equally_good_model(ws, data_file) -> None:
    """Dropout masks differ per process, so DDP is not bit-equal there; it must still learn as well."""
    cfg = {"data": str(data_file), "label": "clicked", "model": "wide_deep", "trainer": {"epochs": 6}}
    one, two = roost.train(cfg), roost.train(cfg, nproc=2)
    assert two.metrics["test_roc_auc"] == pytest.approx(one.metrics["test_roc_auc"], abs=0.03)
    assert two.metrics["test_roc_auc"] > 0.65


def test_cli_nproc_auto_and_bad_values(ws, data_file, tmp_path) -> None:
    import yaml

    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        yaml.safe_dump({"data": str(data_file), "label": "clicked", "trainer": {"epochs": 3}, "register": "clicks"})
    )
    env = {**os.environ, "ROOST_WORKSPACE": str(ws.root)}
    res = subprocess.run(
        [*ROOST, "train", str(cfg), "--nproc", "2", "--json"], env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # one result printed, by rank 0
    runs = _runs()
    parent = roost.get_run(out["run_id"])
    kids = [r for r in runs if r.get("parent_run_id") == parent["run_id"]]
    # lightgbm three times: auto's small-table settings, lightgbm_deep and the library's defaults
    kinds = sorted(r["tags"]["roost.model_type"] for r in kids)
    assert len(runs) == 6 and kinds == ["lightgbm", "lightgbm", "lightgbm", "logreg", "wide_deep"], kinds
    assert parent["tags"]["roost.auto.criterion"] == "validation roc_auc"  # no CV folds on rank 0 alone
    assert all(r["tags"]["roost.distributed.world_size"] == "2" for r in kids)
    assert out["version"] == 1 and roost.load_model("clicks/1") is not None
    assert "Traceback" not in res.stderr
    bads = ("0", "-1", "two", "1.5")  # four CLI starts at once: each is mostly import time, they do not interact
    procs = [
        subprocess.Popen(
            [*ROOST, "train", str(cfg), "--nproc", bad],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for bad in bads
    ]
    for bad, p in zip(bads, procs):
        _, stderr = p.communicate(timeout=300)
        assert p.returncode == 2 and "--nproc" in stderr and "Traceback" not in stderr, (bad, stderr)
    # LightGBM has its own threads: trains once, in this process, and says so
    lgb_cfg = tmp_path / "lgb.yaml"
    lgb_cfg.write_text(yaml.safe_dump({"data": str(data_file), "label": "clicked", "model": "lightgbm"}))
    r = subprocess.run(
        [*ROOST, "train", str(lgb_cfg), "--nproc", "2", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and "--nproc 2 ignored" in r.stderr, r.stderr
    lgb = roost.get_run(json.loads(r.stdout)["run_id"])
    assert "roost.distributed.world_size" not in lgb["tags"]


def test_worker_error_is_the_error_not_a_launcher_report(ws, tmp_path) -> None:
    cfg = {"data": str(tmp_path / "absent.parquet"), "label": "y"}
    with pytest.raises(RoostError) as e:
        roost.train(cfg, nproc=2)
    assert "absent.parquet" in e.value.message and "not found" in e.value.message
    assert _runs() == []


def test_ctrl_c_stops_all_workers_and_marks_the_run_killed(ws, data_file, tmp_path) -> None:
    import yaml

    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": str(data_file),
                "label": "clicked",
                "model": "mlp",
                "trainer": {"epochs": 100000, "patience": 100000},
            }
        )
    )
    env = {**os.environ, "ROOST_WORKSPACE": str(ws.root)}
    proc = subprocess.Popen(
        [*ROOST, "train", str(cfg), "--nproc", "2", "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = _runs()
        if runs and roost.registry.api.metric_history(runs[0]["run_id"], "val_loss"):
            break
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: every process of the group gets it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    [run] = _runs()
    assert run["status"] == "KILLED"
    assert err.count(f"roost train --resume {run['run_id']}") == 1 and "Traceback" not in err, err
    deadline = time.monotonic() + 60  # (python's resource tracker may take a moment to notice; a hang guard)
    while (
        left := subprocess.run(["pgrep", "-a", "-g", str(proc.pid)], capture_output=True, text=True).stdout.strip()
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == "", left  # no worker left behind


@pytest.mark.parametrize(
    ("gpus", "local_world", "requested", "expected"),
    [
        (0, 2, "auto", "gloo"),  # no GPU
        (1, 2, "auto", "gloo"),  # one GPU, two workers: NCCL refuses duplicate GPUs, cuda:1 does not exist
        (2, 2, "auto", "nccl"),
        (8, 4, "auto", "nccl"),
        (4, 4, "cpu", "gloo"),  # the user asked for CPU
    ],
)
def test_nccl_only_when_every_local_worker_has_its_own_gpu(gpus, local_world, requested, expected) -> None:
    from roost.training.distributed import group_backend

    assert group_backend(gpus, local_world, requested) == expected
