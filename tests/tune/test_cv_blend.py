"""Tuning on a small table: trials scored by auto's k-fold CV, the final model a blend of the trials (roost.tune.cv).

Checked against independent recomputations: scikit-learn's StratifiedKFold and roc_auc_score on the trials' saved
out-of-fold predictions, the fold models' own predictions, and the exported package scored with onnxruntime.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

import roost
from roost.registry.run import local_artifact
from roost.tune.engine import Engine

LABEL = "target"


def _table(tmp_path) -> str:
    """breast_cancer (569 rows) as a Parquet file."""
    path = tmp_path / "bc.parquet"
    load_breast_cancer(as_frame=True).frame.to_parquet(path)
    return str(path)


def _rows(path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training+validation rows in that order, test rows) of roost's default split."""
    from roost.training.config import SplitConfig
    from roost.training.data import split

    tr, va, te = split(pd.read_parquet(path), SplitConfig())
    return pd.concat([tr, va]), te


@pytest.mark.slow
def test_trials_are_cross_validated_and_the_final_model_blends_them(ws, tmp_path) -> None:
    from roost.tune.task import tune_task

    data = _table(tmp_path)
    cfg = {
        "data": data,
        "label": LABEL,
        "task": "binary",
        "experiment": "bc",
        "model": {"type": "lightgbm", "params": {"n_estimators": 40}},
    }
    out = tune_task(cfg, trials=4, sampler="random", register="bc-cv")
    both, test = _rows(data)
    y, yt = both[LABEL].to_numpy(), test[LABEL].to_numpy()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    trials = [t for t in Engine().study(out["study_id"])["trials"] if t["state"] == "COMPLETE"]
    assert len(trials) == 4
    oof, bag_test = {}, {}
    for t in trials:
        run = t["attrs"]["run_id"]
        p = np.load(local_artifact(run, "cv/oof.npy"))
        models = pickle.loads(local_artifact(run, "cv/folds.pkl").read_bytes())
        assert len(models) == 5
        for m, (_, held) in zip(models, folds):  # each row predicted by the model of the fold that held it out
            np.testing.assert_allclose(m.predict(both.drop(columns=[LABEL]).iloc[held]), p[held], rtol=1e-6)
        assert t["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        oof[t["number"]] = p
        bag_test[t["number"]] = np.mean([m.predict(test.drop(columns=[LABEL])) for m in models], axis=0)

    # the final model: the tuning run's blend with the weights it reports; scores recomputed from the trials
    weights = {int(k): w for k, w in out["blend"]["weights"].items()}
    assert out["run_id"] == out["tuning_run_id"] and weights and sum(weights.values()) == pytest.approx(1.0)
    # one model type searched: the blend is its best trial alone (one trial per type enters the blend)
    assert weights == {max(trials, key=lambda t: (t["value"], -t["number"]))["number"]: 1.0}
    blend_oof = sum(w * oof[n] for n, w in weights.items())
    blend_test = sum(w * bag_test[n] for n, w in weights.items())
    assert out["metrics"]["val_roc_auc"] == pytest.approx(roc_auc_score(y, blend_oof), abs=1e-12)
    assert out["metrics"]["test_roc_auc"] == pytest.approx(roc_auc_score(yt, blend_test), abs=1e-9)
    # the final out-of-fold score is at least every single trial's (the guard keeps the best alone otherwise)
    assert out["metrics"]["val_roc_auc"] >= max(t["value"] for t in trials) - 1e-12
    # what is registered and served is that blend: the package scored by onnxruntime on the test rows
    assert out["model"] == "bc-cv" and out["version"] == 1
    served = roost.load_model("bc-cv/1").predict(test.drop(columns=[LABEL]))
    np.testing.assert_allclose(np.asarray(served, dtype=np.float64), blend_test, atol=2e-5)


def test_the_blend_takes_the_best_trial_of_each_model_type() -> None:
    from roost.tune.cv import best_of_each_type

    def trial(n: int, kind: str | None, value: float | None) -> dict:
        return {"number": n, "value": value, "params": {"model.type": kind} if kind else {}}

    trials = [
        trial(0, "logreg", 0.80),
        trial(1, "lightgbm", 0.85),
        trial(2, "logreg", 0.83),
        trial(3, "lightgbm", 0.85),  # a tie: the earlier trial stays
        trial(4, "mlp", float("nan")),
        trial(5, "mlp", 0.70),
        trial(6, None, 0.99),  # no model.type param: the config's own type
    ]
    preds = [np.full(3, t["number"], dtype=float) for t in trials]
    kept, kept_preds = best_of_each_type(trials, preds, "maximize", "dcn")
    assert [t["number"] for t in kept] == [1, 2, 5, 6]
    assert [int(p[0]) for p in kept_preds] == [1, 2, 5, 6]
    losses = [trial(0, "logreg", 0.40), trial(1, "logreg", 0.30), trial(2, "mlp", None), trial(3, "mlp", 0.9)]
    kept, _ = best_of_each_type(losses, preds[:4], "minimize", "x")  # a loss: the lowest wins, None never does
    assert [t["number"] for t in kept] == [1, 3]


def test_tuning_model_auto_starts_from_autos_own_candidates(ws, tmp_path) -> None:
    from roost.training.auto import DEFAULT_CANDIDATES, VARIANTS, candidate_config
    from roost.training.config import load_config
    from roost.tune import config as C

    data = _table(tmp_path)
    spec = C.load({"data": data, "label": LABEL, "task": "binary"})
    starts: dict[str, dict] = {}
    for p in spec.start:  # a type's first point: its defaults (a variant's point follows)
        starts.setdefault(p["model.type"], p)
    assert {VARIANTS.get(c, (c,))[0] for c in DEFAULT_CANDIDATES} <= set(starts)
    both, _ = _rows(data)
    n_fit = len(both) - len(both) // 5  # each of auto's 5 fold models fits 4/5 of the rows
    auto = candidate_config(load_config({"data": data, "label": LABEL}), "lightgbm", n_fit, 30).model.params
    lgbm = {k.split(".", 1)[1]: v for k, v in starts["lightgbm"].items() if k != "model.type"}
    from roost.training.lgbm import LightGBMModel

    auto = {**LightGBMModel.DEFAULTS, **auto}  # what auto leaves unset (subsample) is the model's default
    assert lgbm == pytest.approx({k: auto[k] for k in lgbm})
    assert spec.objective.cv  # 569 rows: within auto's cv_max_rows


@pytest.mark.slow
def test_above_cv_max_rows_trials_use_the_validation_split_and_the_best_trial_is_the_model(ws, tmp_path) -> None:
    from roost.tune.task import tune_task

    model = {"type": "auto", "params": {"candidates": ["logreg"], "cv_max_rows": 100}}  # 569 rows > 100
    cfg = {"data": _table(tmp_path), "label": LABEL, "model": model, "trainer": {"epochs": 2}, "experiment": "bc"}
    out = tune_task(cfg, trials=2, sampler="random")
    trials = [t for t in Engine().study(out["study_id"])["trials"] if t["state"] == "COMPLETE"]
    best = max(trials, key=lambda t: t["value"])
    assert out["blend"] is None and out["run_id"] == best["attrs"]["run_id"] != out["tuning_run_id"]
    run = roost.get_run(out["run_id"])
    assert run["metrics"]["val_roc_auc"] == best["value"] and out["package"]
