"""Run by the stock `mlflow` client as bob (a read grant only): argv run_id experiment_name. Prints one JSON line:
what reading gave, and the MLflow error code of each refused write."""

import json
import sys

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

run_id, experiment = sys.argv[1], sys.argv[2]
out = {"read_run_name": MlflowClient().get_run(run_id).info.run_name}
try:
    mlflow.log_metric("bob", 1.0, step=0, run_id=run_id)
    out["log_metric"] = "accepted"
except MlflowException as exc:
    out["log_metric"] = exc.error_code
try:
    exp = MlflowClient().get_experiment_by_name(experiment)
    MlflowClient().create_run(exp.experiment_id)
    out["create_run"] = "accepted"
except MlflowException as exc:
    out["create_run"] = exc.error_code
print(json.dumps(out))
