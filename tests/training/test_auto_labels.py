"""`model: auto` labels each candidate's epoch block, names its parent run, and a child run's TensorBoard resolves."""

from __future__ import annotations

import pytest

import roost
from helpers import mixed_frame


@pytest.fixture
def data_file(tmp_path):
    """A small mixed Parquet file."""
    p = tmp_path / "mixed.parquet"
    mixed_frame(400).to_parquet(p)
    return p


def _cfg(data_file, **kw):
    cfg = {
        "data": str(data_file),
        "label": "clicked",
        "features": ["x1", "x2", "color"],
        # folds 0: the candidates' labels and names are the subject here, not the cross-validated blend
        "model": {"type": "auto", "params": {"candidates": ["logreg", "mlp"], "folds": 0}},
        "trainer": {"epochs": 2},
    }
    cfg.update(kw)
    return cfg


def test_auto_labels_candidates_names_parent_and_child_tensorboard(ws, data_file, capsys) -> None:
    from roost.training.tensorboard import run_logdir

    res = roost.train(_cfg(data_file), progress=True)
    err = capsys.readouterr().err.splitlines()
    heads = [i for i, line in enumerate(err) if line.startswith("candidate ")]
    epochs = [i for i, line in enumerate(err) if line.startswith("epoch ")]
    assert [err[i].strip() for i in heads] == ["candidate 1/2: logreg", "candidate 2/2: mlp"], err
    # logreg's convex solve reports one "epoch" (training/linear_fit.py), the mlp its two
    assert len(epochs) == 3 and heads[0] < epochs[0] < heads[1] < epochs[1] < epochs[2], err
    assert err[epochs[0]].startswith("epoch 1/1 ") and "val_loss" in err[epochs[0]], err

    parent = roost.get_run(res.run_id)
    assert parent["name"] == "auto"
    children = {r["name"]: r for r in roost.search_runs() if r["parent_run_id"] == res.run_id}
    assert set(children) == {"auto:logreg", "auto:mlp"}
    for name, child in children.items():
        d = run_logdir(child["run_id"])  # today: "has no TensorBoard logs" (they are on the parent)
        assert d.is_dir() and d.name == name.split(":")[1]
        assert list(d.glob("events.out.tfevents.*"))


def test_auto_parent_takes_the_configured_name(ws, data_file) -> None:
    res = roost.train(_cfg(data_file, name="clicks"), progress=False)
    assert roost.get_run(res.run_id)["name"] == "clicks"
    names = {r["name"] for r in roost.search_runs() if r["parent_run_id"] == res.run_id}
    assert names == {"clicks:logreg", "clicks:mlp"}
