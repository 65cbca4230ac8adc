"""roost.train end to end: recorded run, package, registry, bad input, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import roost
from helpers import mixed_frame
from roost.errors import ConfigError, RoostError


@pytest.fixture
def data_file(tmp_path):
    """A small mixed Parquet file."""
    p = tmp_path / "mixed.parquet"
    mixed_frame(500).to_parquet(p)
    return p


def _cfg(data_file, **kw):
    cfg = {
        "data": str(data_file),
        "label": "clicked",
        "features": ["x1", "x2", "color", "user_id"],
        "model": "mlp",
        "trainer": {"epochs": 3},
    }
    cfg.update(kw)
    return cfg


def test_train_records_everything(ws, data_file, tmp_path) -> None:
    import yaml

    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(_cfg(data_file, register="clicks")))
    res = roost.train(cfg_path, overrides=["model.params.hidden=[16]", "trainer.lr=0.01"])
    run = roost.get_run(res.run_id)
    assert run["status"] == "FINISHED"
    p = run["params"]
    assert p["model.params.hidden"] == "[16]" and p["trainer.lr"] == 0.01
    assert p["trainer.batch_size"] == 32 and p["model.params.dropout"] == 0.1  # defaults recorded (auto resolved)
    assert len(p["data.fingerprint"]) == 64
    hist = roost.registry.api.metric_history(res.run_id, "val_loss")
    assert [h["step"] for h in hist] == [1, 2, 3]
    assert {"test_roc_auc", "test_rce", "test_ece", "val_roc_auc"} <= set(run["metrics"])
    art = res.package_path.parent
    assert (art / "config.yaml").is_file() and (art / "config.resolved.yaml").is_file()
    assert list((art / "tensorboard").glob("events.out.tfevents.*"))
    assert (art / "checkpoints" / "best.pt").is_file()
    # registered and loadable by name, predictions equal the recorded test metric's model
    assert res.version == 1
    pred = roost.load_model("clicks/1")
    test = mixed_frame(50, seed=7)
    out = pred.predict(test)
    assert out.shape == (50,) and np.all((out >= 0) & (out <= 1))
    assert pred.meta["run_id"] == res.run_id and pred.meta["parity_max_abs_diff"] <= 1e-5
    # the registered package serves from a fresh process without torch
    code = (
        "import sys, roost, pandas as pd; p = roost.load_model('clicks/1'); "
        "print(p.predict(pd.read_parquet(sys.argv[1]))[:3].tolist()); assert 'torch' not in sys.modules"
    )
    test.to_parquet(tmp_path / "rows.parquet")
    env = {**os.environ, "ROOST_WORKSPACE": str(ws.root)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "rows.parquet")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), out[:3], atol=1e-6)


def test_time_split_and_lightgbm(ws, data_file) -> None:
    df = mixed_frame(400)
    df["ts"] = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")
    df.to_parquet(data_file)
    res = roost.train(
        _cfg(
            data_file,
            model={"type": "lightgbm", "params": {"n_estimators": 30}},
            trainer={},
            features=None,
            split={"method": "time", "column": "ts", "test_start": "2024-01-15"},
        )
    )
    run = roost.get_run(res.run_id)
    assert run["params"]["data.test_rows"] == 400 - 14 * 24
    sig = roost.modelpkg.read_signature(res.package_path)
    assert "ts" not in [i["name"] for i in sig["inputs"]] and "clicked" not in [i["name"] for i in sig["inputs"]]
    assert run["params"]["model.params.num_leaves"] == 31


def test_auto_keeps_the_better_candidate(ws, data_file) -> None:
    res = roost.train(_cfg(data_file, model=None, register="auto-clicks"))  # no model named: auto
    assert set(res.candidates) == {"logreg", "wide_deep", "lightgbm", "lightgbm_deep", "lightgbm_defaults"}
    parent = roost.get_run(res.run_id)
    weights = json.loads(parent["tags"]["roost.auto.weights"])  # the blend of the candidates (test_auto_ensemble)
    kept = [c for c in ("logreg", "wide_deep", "lightgbm", "lightgbm_deep", "lightgbm_defaults") if weights[c] > 0]
    assert res.model_type == "+".join(kept) == parent["tags"]["roost.auto.selected"]
    assert parent["params"]["model.type"] == "auto"
    children = [r for r in roost.search_runs() if r["parent_run_id"] == res.run_id]
    names = ["auto:lightgbm", "auto:lightgbm_deep", "auto:lightgbm_defaults", "auto:logreg", "auto:wide_deep"]
    assert sorted(r["name"] for r in children) == names
    assert all(r["status"] == "FINISHED" for r in children)
    assert roost.load_model("auto-clicks/1").meta["model_type"] == res.model_type
    with pytest.raises(ConfigError, match="candidates"):
        roost.train(_cfg(data_file, model={"type": "auto", "params": {"candidates": ["two_tower"]}}))


@pytest.mark.parametrize(
    ("label", "keys"),
    [("kind", {"test_macro_f1", "test_accuracy", "test_log_loss"}), ("score", {"test_rmse", "test_mae", "test_r2"})],
)
def test_multiclass_and_regression_runs(ws, data_file, label, keys) -> None:
    others = [c for c in ("clicked", "kind", "score") if c != label]
    res = roost.train(
        _cfg(data_file, label=label, model="logreg", features={"exclude": others}, trainer={"epochs": 40, "lr": 0.05})
    )
    assert keys <= set(res.metrics)
    pred = roost.load_model(res.package_path)
    test = mixed_frame(30, seed=3)
    out = pred.predict(test)
    if label == "kind":
        assert res.task == "multiclass" and pred.classes == ["high", "low", "mid"] and out.shape == (30, 3)
        np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
    else:
        assert res.task == "regression" and out.shape == (30,)
        assert res.metrics["test_r2"] > 0.8


@pytest.mark.parametrize(
    ("change", "err", "match"),
    [
        ({"label": "clickd"}, RoostError, "available columns: x1, x2"),
        ({"model": "transformer"}, ConfigError, "model.type"),
        ({"trainer": {"lr": "fast"}}, ConfigError, "trainer.lr"),
        ({"model": {"type": "mlp", "params": {"hiden": [4]}}}, ConfigError, "model.params.hiden"),
    ],
)
def test_bad_config_leaves_no_run(ws, data_file, change, err, match) -> None:
    with pytest.raises(err, match=match) as info:
        roost.train(_cfg(data_file, **change))
    assert info.value.hint
    assert roost.search_runs() == []


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.assign(clicked=d.clicked.where(d.index % 50 != 0)), "missing value"),
        (lambda d: d.assign(clicked=1), "single value"),
        (lambda d: d.iloc[:0], "empty|no rows"),
    ],
)
def test_bad_data_leaves_no_run(ws, data_file, mutate, match) -> None:
    mutate(mixed_frame(200)).to_parquet(data_file)
    with pytest.raises(RoostError, match=match) as info:
        roost.train(_cfg(data_file))
    assert info.value.hint
    assert roost.search_runs() == []


def test_ctrl_c_marks_killed_and_resume_matches(ws, data_file, monkeypatch) -> None:
    from roost.training import callbacks
    from roost.training.api import Interrupted

    cfg = _cfg(data_file, trainer={"epochs": 4, "patience": 10})
    full = roost.train(cfg)

    real = callbacks.RunLogger.on_epoch_end

    def boom(self, state, logs):  # Ctrl-C right after epoch 2 was checkpointed
        real(self, state, logs)
        if state.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.RunLogger, "on_epoch_end", boom)
    with pytest.raises(Interrupted) as info:
        roost.train(cfg)
    killed = info.value.run_id
    assert roost.get_run(killed)["status"] == "KILLED"
    monkeypatch.setattr(callbacks.RunLogger, "on_epoch_end", real)
    res = roost.train(resume=killed)
    run = roost.get_run(res.run_id)
    assert run["status"] == "FINISHED" and run["tags"]["roost.resumed_from"] == killed
    assert [h["step"] for h in roost.registry.api.metric_history(res.run_id, "val_loss")] == [3, 4]
    assert res.metrics["test_log_loss"] == pytest.approx(full.metrics["test_log_loss"], abs=1e-9)


def test_restored_best_is_not_logged_as_an_extra_epoch(ws, data_file) -> None:
    res = roost.train(_cfg(data_file, trainer={"epochs": 4, "patience": 100}))
    run = roost.get_run(res.run_id)
    epochs = [h["step"] for h in roost.registry.api.metric_history(res.run_id, "val_loss")]
    assert epochs == [1, 2, 3, 4]
    for key in ("val_roc_auc", "val_log_loss"):
        steps = [h["step"] for h in roost.registry.api.metric_history(res.run_id, key)]
        assert sorted(set(steps)) == epochs, (key, steps)  # no step 5 of 4
    assert run["metrics"]["val_roc_auc"] == pytest.approx(res.metrics["val_roc_auc"])  # latest = the restored model
    best = int(run["tags"]["roost.best_epoch"])
    assert 1 <= best <= 4 and run["metrics"]["best_epoch"] == best
