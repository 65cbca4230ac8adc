"""Run by the stock `mlflow` client (its own venv, .bench/mlflow) against a roost server: logs, searches, registers.

argv: inputs.json outputs.json. It only uses mlflow's public API; everything it sends comes from inputs.json, and
what it reads back goes to outputs.json for the test to compare (with roost's store as the other side).
"""

import json
import os
import sys
import tempfile

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

spec = json.load(open(sys.argv[1]))
out = {"runs": {}}
mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
client = MlflowClient()

exp_id = mlflow.create_experiment(spec["experiment"])
mlflow.set_experiment(spec["experiment"])  # by name: get-by-name finds it
out["experiment_id"] = exp_id
work = tempfile.mkdtemp()

for r in spec["runs"]:
    with mlflow.start_run(run_name=r["name"]) as run:
        rid = run.info.run_id
        mlflow.log_params(r["params"])
        for step, (value, ts) in enumerate(zip(r["acc"], r["acc_ts"])):
            mlflow.log_metric("acc", value, step=step, timestamp=ts)
        for step, batch in enumerate(r["batches"]):
            mlflow.log_metrics(batch, step=step)
        for k, v in r["tags"].items():
            mlflow.set_tag(k, v)
        if r.get("blob_hex"):
            path = os.path.join(work, "blob.bin")
            open(path, "wb").write(bytes.fromhex(r["blob_hex"]))
            mlflow.log_artifact(path, artifact_path="data")
        if r.get("model_files"):
            mdir = os.path.join(work, f"model-{r['name']}")
            os.makedirs(mdir)
            for name, text in r["model_files"].items():
                open(os.path.join(mdir, name), "w").write(text)
            mlflow.log_artifacts(mdir, artifact_path="model")
        out["runs"][r["name"]] = {"run_id": rid, "artifact_uri": run.info.artifact_uri}

got = client.get_run(out["runs"][spec["runs"][0]["name"]]["run_id"])
out["get_run"] = {
    "params": got.data.params,
    "metrics": got.data.metrics,
    "tags": dict(got.data.tags),
    "status": got.info.status,
    "user_id": got.info.user_id,
    "run_name": got.info.run_name,
}

found = client.search_runs([exp_id], filter_string=spec["filter"], order_by=["metrics.acc DESC"])
out["search"] = [r.info.run_id for r in found]
pages, token = [], None
while True:  # one run a page: next_page_token carries the search on
    page = client.search_runs([exp_id], max_results=1, page_token=token, order_by=["metrics.acc DESC"])
    pages += [r.info.run_id for r in page]
    token = page.token
    if not token:
        break
out["paged"] = pages
out["all_default_order"] = [r.info.run_id for r in client.search_runs([exp_id])]

first = out["runs"][spec["runs"][0]["name"]]["run_id"]
out["history"] = [[m.step, m.value, m.timestamp] for m in client.get_metric_history(first, "acc")]

local = mlflow.artifacts.download_artifacts(run_id=first, artifact_path="data/blob.bin", dst_path=work + "/dl")
out["downloaded_hex"] = open(local, "rb").read().hex()
out["listed"] = sorted(f.path for f in client.list_artifacts(first, "model"))

mv = mlflow.register_model(f"runs:/{first}/model", spec["model"])
out["registered_version"] = mv.version
client.set_registered_model_alias(spec["model"], "prod", mv.version)
by_alias = client.get_model_version_by_alias(spec["model"], "prod")
out["alias_version"] = by_alias.version
out["alias_run_id"] = by_alias.run_id
mdir = mlflow.artifacts.download_artifacts(f"models:/{spec['model']}@prod", dst_path=work + "/model-dl")
out["model_download"] = {n: open(os.path.join(mdir, n)).read() for n in sorted(os.listdir(mdir))}
out["search_versions"] = [(v.name, v.version) for v in client.search_model_versions(f"name = '{spec['model']}'")]


class AddN(mlflow.pyfunc.PythonModel):
    def __init__(self, n):
        self.n = n

    def predict(self, context, model_input, params=None):
        return [x + self.n for x in model_input["x"]]


with mlflow.start_run(run_name="pyfunc") as run:  # MLflow 3's way: a logged model, registered by models:/m-…
    info = mlflow.pyfunc.log_model(name="adder", python_model=AddN(spec["add"]), pip_requirements=["mlflow"])
    out["pyfunc_run_id"] = run.info.run_id
mv = mlflow.register_model(info.model_uri, "adder")
out["pyfunc_version"] = mv.version
out["pyfunc_logged_model_id"] = info.model_id
loaded = mlflow.pyfunc.load_model("models:/adder/1")
out["pyfunc_predictions"] = [float(y) for y in loaded.predict(pd.DataFrame({"x": spec["inputs"]}))]

mlflow.set_experiment(spec["experiment"] + "-nested")
with mlflow.start_run(run_name="parent") as parent:
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_metric("x", 1.0)
out["nested"] = [parent.info.run_id, child.info.run_id]
default_run = client.create_run("0")  # MLflow's Default experiment
client.set_terminated(default_run.info.run_id)
out["default_run"] = default_run.info.run_id

try:
    client.get_run("0" * 32)
    out["missing_run"] = None
except MlflowException as exc:
    out["missing_run"] = exc.error_code
try:
    mlflow.create_experiment(spec["experiment"])
    out["duplicate_experiment"] = None
except MlflowException as exc:
    out["duplicate_experiment"] = exc.error_code

json.dump(out, open(sys.argv[2], "w"))
