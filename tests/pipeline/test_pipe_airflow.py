"""Export to real Apache Airflow (own venv) and `airflow dags test`: same registered model as the local runner."""

import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

import roost
from roost.pipeline.loader import load_pipeline
from roost.pipeline.runner import run_pipeline

PIPE = """
name: bc
params: {epochs: 3}
tasks:
  train:
    uses: train
    with:
      config: {data: "sklearn:breast_cancer", label: target, model: logreg, trainer: {epochs: 3, seed: 0}}
      register: bc
  evaluate:
    uses: evaluate
    with: {model: "${tasks.train}", data: "sklearn:breast_cancer", label: target}
  gate:
    uses: compare
    with: {challenger: "${tasks.evaluate}", champion: bc@prod, metric: roc_auc, margin: 0.0}
  promote:
    uses: promote
    with: {gate: "${tasks.gate}", alias: prod}
"""


@pytest.mark.slow
@pytest.mark.services
def test_exported_dag_runs_in_airflow_and_matches_local(ws, airflow, cli):
    """The exported DAG under `airflow dags test` (on the session's migrated Airflow DB, copied) = the local run."""
    airflow_bin, env = airflow
    f = ws.root / "bc.yaml"
    f.write_text(textwrap.dedent(PIPE))
    local = run_pipeline(load_pipeline(f))
    assert local.status == "FINISHED", {n: s.error for n, s in local.tasks.items()}
    assert local.output("promote") == {"promoted": True, "model": "bc", "alias": "prod", "version": 1, "previous": None}
    code, out, err = cli(
        "pipeline", "export", str(f), "--airflow", str(Path(env["AIRFLOW__CORE__DAGS_FOLDER"], "bc_dag.py"))
    )
    assert code == 0, err
    r = subprocess.run(
        [str(airflow_bin), "dags", "test", "roost_bc"], env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0 and "state=success" in (r.stdout + r.stderr).replace(
        "DagRunState.SUCCESS", "state=success"
    ), r.stderr[-3000:]
    versions = roost.list_versions("bc")
    assert [v.version for v in versions] == [1, 2]  # Airflow's train registered the second version
    assert roost.resolve_model("bc@prod").version == 2  # and its promote moved the alias
    airflow_runs = roost.search_runs("tags.roost.runner = 'airflow'", limit=None)
    assert {r["tags"]["roost.task"] for r in airflow_runs} == {"train", "evaluate", "gate", "promote"}
    from roost.datasets import load

    X = load("sklearn:breast_cancer")
    a, b = roost.load_model("bc/1").predict(X), roost.load_model("bc/2").predict(X)
    np.testing.assert_allclose(a, b, atol=1e-6)  # the same model, trained by Airflow
