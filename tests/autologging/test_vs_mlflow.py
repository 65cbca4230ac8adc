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
