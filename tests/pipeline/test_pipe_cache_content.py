"""The task cache keys on contents and resolved references, not on paths and names (issue #16)."""

import textwrap
from pathlib import Path

import roost
from roost.pipeline import Pipeline, task
from roost.pipeline.loader import load_pipeline
from roost.pipeline.runner import run_pipeline


def _states(res) -> dict:
    return {n: s.state for n, s in res.tasks.items()}


def test_edited_config_and_the_data_it_names_invalidate_the_cache(ws, tmp_path):
    """Same paths, new contents: the task runs again, directly (config) and one file removed (data in config)."""
    calls = []

    @task
    def read(config: str) -> str:
        import yaml

        calls.append(config)
        doc = yaml.safe_load(Path(config).read_text())
        return Path(doc["data"]).read_text()

    cfg, data = ws.root / "train.yaml", ws.root / "rows.csv"
    data.write_text("a\n1\n")
    cfg.write_text("data: rows.csv\nepochs: 3\n")
    with Pipeline("files") as p:
        read("train.yaml")
    assert run_pipeline(p).output("read") == "a\n1\n" and len(calls) == 1
    assert _states(run_pipeline(p)) == {"read": "cached"} and len(calls) == 1  # nothing changed: cached
    cfg.write_text("data: rows.csv\nepochs: 4\n")  # the config's content, same path
    assert _states(run_pipeline(p)) == {"read": "succeeded"} and len(calls) == 2
    data.write_text("a\n2\n")  # a file the config names
    res = run_pipeline(p)
    assert _states(res) == {"read": "succeeded"} and res.output("read") == "a\n2\n" and len(calls) == 3
    assert _states(run_pipeline(p)) == {"read": "cached"} and len(calls) == 3


PIPE = """
name: bc
tasks:
  train:
    uses: train
    with: {config: train.yaml, register: bc}
  evaluate:
    uses: evaluate
    with: {model: "${tasks.train}", data: "sklearn:breast_cancer", label: target}
  gate:
    uses: compare
    with: {challenger: "${tasks.evaluate}", champion: bc@prod, metric: roc_auc, margin: -1.0}
  promote:
    uses: promote
    with: {gate: "${tasks.gate}", alias: prod}
"""

TRAIN = """
data: "sklearn:breast_cancer"
label: target
model: logreg
trainer: {{epochs: {epochs}, seed: 0}}
"""


def test_config_edit_alias_move_and_promotion_summary(ws, cli):
    """Edit train.yaml -> train runs; prod moved back -> promote re-promotes; prod at a new version -> gate runs."""
    f = ws.root / "bc.yaml"
    f.write_text(textwrap.dedent(PIPE))
    (ws.root / "train.yaml").write_text(TRAIN.format(epochs=3))
    r1 = run_pipeline(load_pipeline(f))
    assert r1.status == "FINISHED", {n: s.error for n, s in r1.tasks.items()}
    assert roost.resolve_model("bc@prod").version == 1
    assert r1.tasks["promote"].summary == "moved bc@prod to version 1 (was unset)"

    (ws.root / "train.yaml").write_text(TRAIN.format(epochs=4))  # same path, new content
    r2 = run_pipeline(load_pipeline(f))
    assert _states(r2) == dict.fromkeys(("train", "evaluate", "gate", "promote"), "succeeded")
    assert r2.output("train")["version"] == 2 and roost.resolve_model("bc@prod").version == 2

    roost.set_alias("bc", 1, "prod")  # someone moves prod back
    r3 = run_pipeline(load_pipeline(f))
    assert _states(r3)["train"] == "cached" and _states(r3)["promote"] == "succeeded"
    assert roost.resolve_model("bc@prod").version == 2  # re-promoted
    assert r3.tasks["promote"].summary == "moved bc@prod to version 2 (was 1)"
    code, out, err = cli("pipeline", "show", r3.run_id)
    assert code == 0, err
    assert "moved bc@prod to version 2 (was 1)" in " ".join(out.split())

    r4 = run_pipeline(load_pipeline(f))  # prod moved since r3 started: gate (v2 vs v2) and promote run
    assert _states(r4) == {"train": "cached", "evaluate": "cached", "gate": "succeeded", "promote": "succeeded"}
    assert r4.tasks["promote"].summary == "bc@prod already at version 2"
    r4 = run_pipeline(load_pipeline(f))  # nothing changed: all cached, and the summary says nothing was done
    assert set(_states(r4).values()) == {"cached"}
    assert r4.tasks["promote"].summary.startswith("nothing run (cached)")

    v3 = roost.register_model(r2.output("train")["run_id"], "bc")  # prod now names a version gate never saw
    roost.set_alias("bc", v3.version, "prod")
    r5 = run_pipeline(load_pipeline(f))
    assert _states(r5)["gate"] == "succeeded" and r5.output("gate")["champion_version"] == 3
    assert roost.resolve_model("bc@prod").version == 2
