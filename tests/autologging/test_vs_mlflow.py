"""roost's and MLflow 3.17's scikit-learn autolog on the same fits (MLflow in its own venv, the same scikit-learn):
the same params, and the same training metrics under the same names with the same values — the table in
docs/autolog.md, checked."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

FITS = r"""
import json, sys
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def fits():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)).fit(X, y)
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0).fit(Xr, yr)
    RandomForestClassifier(n_estimators=10, max_depth=3, random_state=0).fit(X, y)  # roost: one predict_proba pass
"""

MLFLOW_SIDE = (
    FITS
    + r"""
import mlflow
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
mlflow.sklearn.autolog(log_models=False, log_datasets=False, log_post_training_metrics=False)
fits()
client = mlflow.tracking.MlflowClient()
out = []
for r in client.search_runs(["0"], order_by=["attributes.start_time ASC"]):
    out.append({"params": r.data.params, "metrics": r.data.metrics, "status": r.info.status})
print("RUNS " + json.dumps(out))
"""
)


def test_same_fits_same_params_and_training_metrics_as_mlflow(ws: Any, tmp_path: Path, mlflow_python: Path) -> None:
    import roost

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    env.pop("MLFLOW_TRACKING_URI", None)
    p = subprocess.run([str(mlflow_python), "-c", MLFLOW_SIDE, str(tmp_path / "mlflow.db")], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=600)  # fmt: skip
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RUNS ")]
    assert lines, p.stderr[-3000:]
    theirs = json.loads(lines[0][5:])

    namespace: dict[str, Any] = {}
    exec(compile(FITS, "fits", "exec"), namespace)  # the very same fits, in this process
    roost.sklearn.autolog(log_models=False)
    namespace["fits"]()
    ours = sorted(roost.search_runs(limit=None), key=lambda r: r["start_time"])

    assert len(ours) == len(theirs) == 3
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine["status"] == "FINISHED" and ref["status"] == "FINISHED"
        mine_params = {k: str(v) for k, v in mine["params"].items() if not k.startswith("data.")}
        assert mine_params == ref["params"]
        training = {k: v for k, v in ref["metrics"].items() if k.startswith("training_")}
        assert training, ref["metrics"]
        assert set(training) <= set(mine["metrics"]), sorted(set(training) - set(mine["metrics"]))
        for k, v in training.items():
            assert math.isclose(mine["metrics"][k], v, rel_tol=1e-9, abs_tol=1e-12), k


BOOSTING_FITS = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import lightgbm as lgb
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes


def fits():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    Xa, ya, Xb, yb = X[:400], y[:400], X[400:], y[400:]
    lgb.LGBMClassifier(n_estimators=60, num_leaves=7, learning_rate=0.3, verbose=-1, random_state=0).fit(
        Xa, ya, eval_set=[(Xa, ya), (Xb, yb)], eval_metric="auc", callbacks=[lgb.early_stopping(4, verbose=False)])
    lgb.train({"objective": "binary", "num_leaves": 5, "learning_rate": 0.2, "verbose": -1, "metric": ["auc"]},
              lgb.Dataset(Xa, ya), num_boost_round=40, valid_sets=[lgb.Dataset(Xb, yb)], valid_names=["held"],
              callbacks=[lgb.early_stopping(3, verbose=False)])
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    lgb.LGBMRegressor(n_estimators=15, num_leaves=5, verbose=-1).fit(
        Xr[:300], yr[:300], eval_set=[(Xr[300:], yr[300:])])
    xgb.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.4, eval_metric=["logloss", "auc"],
                      early_stopping_rounds=4).fit(Xa, ya, eval_set=[(Xa, ya), (Xb, yb)], verbose=False)
    xgb.train({"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "eval_metric": "logloss"},
              xgb.DMatrix(Xa, ya), num_boost_round=40, evals=[(xgb.DMatrix(Xb, yb), "held")],
              early_stopping_rounds=3, verbose_eval=False)
    xgb.XGBRegressor(n_estimators=12, max_depth=2).fit(
        Xr[:300], yr[:300], eval_set=[(Xr[300:], yr[300:])], verbose=False)
"""

BOOSTING_MLFLOW_SIDE = (
    BOOSTING_FITS
    + r"""
import mlflow
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
mlflow.autolog(log_models=False, log_datasets=False, silent=True)
fits()
client = mlflow.tracking.MlflowClient()
out = []
for r in client.search_runs(["0"], order_by=["attributes.start_time ASC"]):
    history = {k: sorted([m.step, m.value] for m in client.get_metric_history(r.info.run_id, k))
               for k in r.data.metrics}
    out.append({"params": r.data.params, "metrics": r.data.metrics, "history": history, "status": r.info.status})
print("RUNS " + json.dumps(out))
"""
)


def test_boosting_fits_same_params_metrics_and_curves_as_mlflow(
    ws: Any, tmp_path: Path, mlflow_autolog_python: Path
) -> None:
    """LightGBM and XGBoost, their scikit-learn classes and train(), with and without early stopping: every param
    and metric MLflow records is in roost's run with the same value, and each metric's curve is the same points —
    after early stopping the best iteration's results once more as the last step, `best_iteration` and
    `stopped_iteration` as MLflow counts them."""
    import roost
    from roost.registry import deferred
    from roost.registry.api import metric_history

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    env.pop("MLFLOW_TRACKING_URI", None)
    p = subprocess.run([str(mlflow_autolog_python), "-c", BOOSTING_MLFLOW_SIDE, str(tmp_path / "mlflow.db")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)  # fmt: skip
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RUNS ")]
    assert lines, p.stderr[-3000:]
    theirs = json.loads(lines[0][5:])

    namespace: dict[str, Any] = {}
    exec(compile(BOOSTING_FITS, "boosting_fits", "exec"), namespace)
    roost.autolog(log_models=False)
    namespace["fits"]()
    deferred.wait()
    ours = sorted(roost.search_runs(limit=None), key=lambda r: r["start_time"])

    assert [r["name"] for r in ours] == [
        "LGBMClassifier", "lightgbm.train", "LGBMRegressor", "XGBClassifier", "xgboost.train", "XGBRegressor",
    ]  # fmt: skip
    assert len(theirs) == len(ours)
    stopped_early = 0
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine["status"] == "FINISHED" and ref["status"] == "FINISHED"
        # every param MLflow records, with its value — but the estimator's own params keep the value you gave
        # (objective None for LightGBM's classes, where MLflow shows the booster's resolved one)
        kept_own = {k for k, v in ref["params"].items() if k in mine["params"] and str(mine["params"][k]) != v}
        assert kept_own <= {"objective"}, {k: (mine["params"][k], ref["params"][k]) for k in kept_own}
        assert all(str(mine["params"][k]) == "None" for k in kept_own) and set(ref["params"]) <= set(mine["params"])
        assert set(ref["metrics"]) <= set(mine["metrics"]), sorted(set(ref["metrics"]) - set(mine["metrics"]))
        for key, value in ref["metrics"].items():
            assert math.isclose(mine["metrics"][key], value, rel_tol=1e-9, abs_tol=1e-12), (mine["name"], key)
            points = sorted([m["step"], m["value"]] for m in metric_history(mine["run_id"], key))
            assert len(points) == len(ref["history"][key]), (mine["name"], key)
            for (step, v), (their_step, their_v) in zip(points, ref["history"][key], strict=True):
                assert step == their_step and math.isclose(v, their_v, rel_tol=1e-9, abs_tol=1e-12), (key, step)
        stopped_early += "stopped_iteration" in ref["metrics"]
    assert stopped_early == 4  # the fits with early stopping (xgb.train's runs its 40 rounds: the best is the last)
