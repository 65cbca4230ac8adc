"""The pipeline's `tune` task: tune → evaluate → compare → promote, locally (cached on a rerun) and in Airflow."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

import roost

PIPE = """
name: bctune
tasks:
  tune:
    uses: tune
    with:
      config: {data: "sklearn:breast_cancer", label: target, model: logreg, trainer: {epochs: 3}, experiment: bc}
      trials: 3
      sampler: random
      register: bc
  evaluate:
    uses: evaluate
    with: {model: "${tasks.tune}", data: "sklearn:breast_cancer", label: target}
  gate:
    uses: compare
    with: {challenger: "${tasks.evaluate}", champion: bc@prod, metric: roc_auc, margin: 0.0}
  promote:
    uses: promote
    with: {gate: "${tasks.gate}", alias: prod}
"""


def _tuning_runs() -> list[dict]:
    return roost.search_runs("tags.roost.kind = 'tune'", limit=None)


def _best_children(parent: str) -> tuple[set[str], float]:
    """The child runs with the best validation (here out-of-fold) AUC and that AUC."""
    kids = [r for r in roost.search_runs(limit=None) if r["parent_run_id"] == parent]
    assert len(kids) == 3
    top = max(r["metrics"]["val_roc_auc"] for r in kids)
    return {r["run_id"] for r in kids if r["metrics"]["val_roc_auc"] == top}, top


@pytest.mark.slow
def test_tune_task_feeds_evaluate_compare_promote_and_is_cached(ws) -> None:
    from roost.pipeline.loader import load_pipeline
    from roost.pipeline.runner import run_pipeline

    f = ws.root / "bctune.yaml"
    f.write_text(textwrap.dedent(PIPE))
    res = run_pipeline(load_pipeline(f))
    assert res.status == "FINISHED", {n: s.error for n, s in res.tasks.items()}
    out = res.output("tune")
    (parent,) = [r["run_id"] for r in _tuning_runs()]
    _, top = _best_children(parent)  # the registry's view, not the study's
    # a small table: the final model is the tuning run's blend of the cross-validated trials (roost.tune.cv); the
    # defaults (trial 0) stay unless a tuned trial beats them beyond the fold noise, so its out-of-fold ROC-AUC is at
    # least the kept trial's: the defaults' or the best trial's
    assert out["run_id"] == out["tuning_run_id"] == parent and out["blend"]["weights"]
    kids = {
        r["name"]: r["metrics"]["val_roc_auc"] for r in roost.search_runs(limit=None) if r["parent_run_id"] == parent
    }
    kept = [kids[f"trial-{n}"] for n in out["blend"]["weights"]]
    assert set(out["blend"]["weights"]) <= {"0"} or max(kept) == top
    assert out["metrics"]["val_roc_auc"] >= max(kept) - 1e-12
    assert out["trials"] == {"COMPLETE": 3} and "prescribed space for logreg" in out["space"]
    assert (out["model"], out["version"]) == ("bc", 1)
    assert roost.resolve_model("bc/1").run_id == out["run_id"]
    promoted = res.output("promote")
    assert {k: promoted[k] for k in ("promoted", "model", "alias", "version")} == {
        "promoted": True,
        "model": "bc",
        "alias": "prod",
        "version": 1,
    }
    assert res.output("evaluate")["metrics"]["roc_auc"] > 0.9
    again = run_pipeline(load_pipeline(f))  # same inputs: the tuning is not run again
    assert again.status == "FINISHED" and again.tasks["tune"].state == "cached"
    assert len(_tuning_runs()) == 1 and [v.version for v in roost.list_versions("bc")] == [1]


@pytest.mark.slow
@pytest.mark.services
def test_exported_dag_runs_the_tune_task_in_airflow(ws, airflow, cli) -> None:
    """The exported DAG under `airflow dags test`, on a copy of the session's migrated Airflow DB (root conftest)."""
    airflow, env = airflow
    f = ws.root / "bctune.yaml"
    f.write_text(textwrap.dedent(PIPE))
    dag = Path(env["AIRFLOW__CORE__DAGS_FOLDER"], "bctune_dag.py")
    code, _, err = cli("pipeline", "export", str(f), "--airflow", str(dag))
    assert code == 0, err
    r = subprocess.run(
        [str(airflow), "dags", "test", "roost_bctune"], env=env, capture_output=True, text=True, timeout=900
    )
    text = (r.stdout + r.stderr).replace("DagRunState.SUCCESS", "state=success")
    assert r.returncode == 0 and "state=success" in text, r.stderr[-3000:]
    (parent,) = [x["run_id"] for x in _tuning_runs()]  # Airflow's tune task ran the tuning, in this workspace
    assert roost.resolve_model("bc@prod").version == 1
    assert roost.resolve_model("bc/1").run_id == parent  # the blend of the trials, kept on the tuning run


def test_the_engagement_example_has_a_tuning_variant() -> None:
    from roost.pipeline.loader import load_pipeline

    root = Path(__file__).resolve().parents[2] / "examples" / "engagement"
    p = load_pipeline(root / "pipeline_tuned.yaml")
    assert p.order() == [["materialize"], ["tune"], ["evaluate"], ["gate"], ["promote"]]
    assert p.nodes["tune"].task.name == "tune" and p.params["trials"] == 20
