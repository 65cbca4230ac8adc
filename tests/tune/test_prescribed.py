"""`roost tune CONFIG` without a search block: the model's prescribed space, across types for `model: auto`."""

from __future__ import annotations

import json

import pytest
import yaml

import roost
from roost.errors import ConfigError
from roost.tune import config as C
from roost.tune.search_space import Space


def _write(ws, cfg: dict, name: str = "train.yaml") -> str:
    path = ws.root / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _kids(parent: str) -> list[dict]:
    return [r for r in roost.search_runs(limit=None) if r["parent_run_id"] == parent]


BC = {"data": "sklearn:breast_cancer", "label": "target", "task": "binary"}


def test_no_search_block_uses_the_models_prescribed_space(ws) -> None:
    spec = C.load({**BC, "model": "lightgbm"})
    names = set(spec.space)
    assert {"learning_rate", "num_leaves", "min_child_samples"} <= names
    assert spec.objective.keys["learning_rate"] == "model.params.learning_rate"
    assert "lightgbm" in spec.source and spec.metric == "val_roc_auc" and spec.direction == "maximize"
    spec = C.load({**BC, "model": "mlp"})
    assert spec.objective.keys["lr"] == "trainer.lr" and spec.objective.keys["hidden"] == "model.params.hidden"
    assert not Space.parse(spec.space).conditional


def test_params_the_config_sets_are_not_searched(ws) -> None:
    spec = C.load({**BC, "model": {"type": "mlp", "params": {"hidden": [32]}}, "trainer": {"lr": 0.01}})
    assert "hidden" not in spec.space and "lr" not in spec.space and "dropout" in spec.space
    assert "pinned by the config: lr, hidden" in spec.source or "pinned by the config: hidden, lr" in spec.source


def test_extend_narrows_drops_and_adds(ws) -> None:
    search = {"lr": {"loguniform": [0.01, 0.02]}, "dropout": None, "patience": [2, 4]}
    spec = C.load({**BC, "model": "mlp", "search": search, "tune": {"extend": True}})
    assert spec.space["lr"] == {"loguniform": [0.01, 0.02]}
    assert "dropout" not in spec.space and "hidden" in spec.space
    assert spec.space["patience"] == {"choice": [2, 4]} and spec.objective.keys["patience"] == "trainer.patience"
    with pytest.raises(ConfigError, match="dropuot"):
        C.load({**BC, "model": "mlp", "search": {"dropuot": None}, "tune": {"extend": True}})
    # without extend, a search block is the whole space (as before)
    spec = C.load({**BC, "model": "mlp", "search": {"lr": {"loguniform": [0.01, 0.02]}}})
    assert list(spec.space) == ["lr"] and spec.source == "search block"


def test_auto_is_a_conditional_space_over_model_types(ws) -> None:
    spec = C.load({**BC, "model": {"type": "auto", "params": {"candidates": ["logreg", "lightgbm"]}}})
    sp = Space.parse(spec.space)
    assert sp.params[0].name == "model.type" and sp.params[0].choices == ("logreg", "lightgbm")
    assert sp.conditional and spec.objective.keys["lightgbm.learning_rate"] == "model.params.learning_rate"
    assert spec.objective.config["model"] == {"type": "logreg"}  # auto's candidates are not a model param
    # a point for logreg carries no lightgbm params, and vice versa
    ok = sp.validate({"model.type": "logreg", "logreg.lr": 0.01, "logreg.weight_decay": 1e-4})
    assert set(ok) == {"model.type", "logreg.lr", "logreg.weight_decay"}
    with pytest.raises(ConfigError, match="inactive"):
        sp.validate({"model.type": "logreg", "logreg.lr": 0.01, "logreg.weight_decay": 1e-4, "lightgbm.num_leaves": 8})


@pytest.mark.slow
@pytest.mark.parametrize("model", ["logreg", "lightgbm"])
def test_cli_tunes_without_a_search_block(ws, cli, model: str) -> None:
    pin = {"trainer": {"epochs": 3}} if model == "logreg" else {"model": {"type": "lightgbm"}}
    cfg = {**BC, "model": model, **pin, "experiment": "bc"}
    if model == "lightgbm":
        cfg["model"] = {"type": "lightgbm", "params": {"n_estimators": 30}}
    code, out, err = cli("tune", _write(ws, cfg), "--trials", "3", "--seed", "1", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["finished"] == 3 and model in res["space_source"]
    from roost.tune.prescribed import key_for

    space = Space.parse(res["space"])
    kids = _kids(res["parent_run_id"])
    assert len(kids) == 3
    for r in kids:  # every trial trained this model type, with a point of the prescribed space as its params
        assert r["status"] == "FINISHED" and r["params"]["model.type"] == model
        for p in space.params:
            key = key_for(model, p.name)
            got = r["params"][key]
            got = json.loads(got) if isinstance(got, str) and got.startswith("[") else got
            p.check(got)  # raises when the trainer ran with a value outside the prescribed range
    # the best trial is the child run with the best validation AUC (read from the registry, not the study)
    best = max(kids, key=lambda r: r["metrics"]["val_roc_auc"])
    assert res["best"]["value"] == pytest.approx(best["metrics"]["val_roc_auc"])
    assert roost.get_run(res["parent_run_id"])["tags"]["roost.tune.space"] == res["space_source"]


@pytest.mark.slow
def test_cli_tunes_across_model_types_with_auto(ws, cli) -> None:
    cfg = {
        **BC,
        "model": {"type": "auto", "params": {"candidates": ["logreg", "lightgbm"]}},
        "trainer": {"epochs": 3},
        "experiment": "bc",
    }
    code, out, err = cli("tune", _write(ws, cfg), "--trials", "6", "--seed", "0", "--sampler", "random", "--json")
    assert code == 0, err
    res = json.loads(out)
    kids = _kids(res["parent_run_id"])
    st = roost.tune.Engine().study(res["study_id"])
    assert len(kids) == 6 == st["counts"]["COMPLETE"]
    by_run = {t["attrs"]["run_id"]: t for t in st["trials"]}
    for r in kids:  # the run trained the type the trial drew, with only that type's params
        t = by_run[r["run_id"]]
        mt = t["params"]["model.type"]
        assert r["params"]["model.type"] == mt
        assert all(k == "model.type" or k.startswith(mt + ".") for k in t["params"])
    counts = {k: v["trials"] for k, v in res["by_model_type"].items()}
    assert sum(counts.values()) == 6 and set(counts) == {"logreg", "lightgbm"}  # the defaults of each go first
    assert [t["params"]["model.type"] for t in st["trials"][:2]] == ["logreg", "lightgbm"]
    best = max(kids, key=lambda r: r["metrics"]["val_roc_auc"])
    assert res["best"]["value"] == pytest.approx(best["metrics"]["val_roc_auc"])


def test_tuning_starts_from_each_types_defaults(ws) -> None:
    spec = C.load({**BC, "model": {"type": "auto", "params": {"candidates": ["logreg", "lightgbm"]}}})
    # logreg trains at lr 1e-2 and weight decay 1e-4 by default; LightGBM as auto's candidate on a table this small
    # (569 rows; each fold model fits 4/5 of the training+validation rows): learning_rate 0.03, 7 leaves,
    # min_child_samples 20, all rows, half of the 30 columns per tree, L2 1.0 (lgbm.table_defaults)
    assert spec.start == [
        {"model.type": "logreg", "logreg.lr": 0.01, "logreg.weight_decay": 1e-4},
        {
            "model.type": "lightgbm",
            "lightgbm.learning_rate": 0.03,
            "lightgbm.num_leaves": 7,
            "lightgbm.min_child_samples": 20,
            "lightgbm.subsample": 1.0,  # LightGBM's own default: no row subsampling
            "lightgbm.colsample_bytree": 0.5,
            "lightgbm.reg_lambda": 1.0,
        },
        {  # auto's lightgbm_defaults candidate: LGBMClassifier()'s parameters (no L2: the range's low end)
            "model.type": "lightgbm",
            "lightgbm.learning_rate": 0.1,
            "lightgbm.num_leaves": 31,
            "lightgbm.min_child_samples": 20,
            "lightgbm.subsample": 1.0,
            "lightgbm.colsample_bytree": 1.0,
            "lightgbm.reg_lambda": 1e-3,
        },
        {  # auto's lightgbm_deep candidate: LightGBM's usual capacity with early stopping
            "model.type": "lightgbm",
            "lightgbm.learning_rate": 0.05,
            "lightgbm.num_leaves": 31,
            "lightgbm.min_child_samples": 20,
            "lightgbm.subsample": 1.0,
            "lightgbm.colsample_bytree": 1.0,
            "lightgbm.reg_lambda": 1e-3,
        },
    ]
    for point in spec.start:
        Space.parse(spec.space).validate(point)
    spec = C.load({**BC, "model": "mlp", "search": {"lr": [0.001, 0.01]}, "tune": {"extend": True}})
    assert spec.start == [
        {"lr": 0.001, "weight_decay": 1e-4, "hidden": [256, 128], "dropout": 0.1}
    ]  # 2e-3 not offered: first choice
    assert C.load({**BC, "model": "mlp", "search": {"lr": [0.001, 0.01]}}).start == []  # own space: no defaults


def test_tuning_auto_starts_from_the_variants_auto_trains_for_the_task(ws) -> None:
    """auto trains `lightgbm_fine` in `lightgbm_deep`'s place for regression only (auto_candidates.table_candidates):
    tuning `model: auto` starts from the variants of its own task, not from every variant there is."""
    from roost.training.auto_candidates import VARIANTS

    def lgbm_starts(cfg: dict) -> list[int]:
        spec = C.load({**cfg, "model": {"type": "auto", "params": {"candidates": ["lightgbm"]}}})
        return sorted(p["lightgbm.min_child_samples"] for p in spec.start if p.get("model.type") == "lightgbm")

    fine = VARIANTS["lightgbm_fine"][1]["min_child_samples"]
    deep = VARIANTS["lightgbm_deep"][1]["min_child_samples"]
    assert fine != deep
    binary = lgbm_starts(BC)
    assert fine not in binary and deep in binary
    regression = lgbm_starts({"data": "sklearn:diabetes", "label": "target", "task": "regression"})
    assert fine in regression
