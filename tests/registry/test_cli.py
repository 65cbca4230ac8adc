import json

import roost


def _seed():
    ids = []
    for i, (lr, auc) in enumerate([(0.1, 0.7), (0.01, 0.95), (0.001, 0.91)]):
        with roost.start_run(experiment="churn", name=f"r{i}", params={"lr": lr}) as run:
            run.log_metric("auc", auc)
            d = run.artifact_dir / "model"
            d.mkdir()
            (d / "model.onnx").write_bytes(b"x")
            (d / "roost-model.yaml").write_text(f"framework: torch\nmetrics: {{auc: {auc}}}\n")
            ids.append(run.id)
    return ids


def test_runs_list_filter_order_json(ws, cli):
    _seed()
    code, out, _ = cli("runs", "list", "--filter", "metrics.auc > 0.9", "--order-by", "metrics.auc DESC", "--json")
    assert code == 0
    data = json.loads(out)
    assert [r["name"] for r in data] == ["r1", "r2"]
    code, out, _ = cli("runs", "list", "--experiment", "churn")
    assert code == 0 and "3 run(s)" in out


def test_runs_show_delete_and_experiments(ws, cli):
    ids = _seed()
    code, out, _ = cli("runs", "show", ids[0][:8], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["run_id"] == ids[0] and shown["params"] == {"lr": 0.1}
    assert [a["path"] for a in shown["artifacts"]] == ["model/model.onnx", "model/roost-model.yaml"]
    code, out, _ = cli("experiments", "list", "--json")
    assert {e["name"]: e["runs"] for e in json.loads(out)} == {"churn": 3}
    assert cli("runs", "delete", ids[0])[0] == 0
    assert len(roost.search_runs()) == 2


def test_models_alias_versions_show(ws, cli):
    ids = _seed()
    for rid in ids:
        roost.register_model(rid, "churn", "model")
    assert cli("models", "alias", "churn", "2", "prod")[0] == 0
    code, out, _ = cli("models", "show", "churn@prod", "--json")
    d = json.loads(out)
    assert code == 0 and d["version"] == 2 and d["run_id"] == ids[1] and d["meta"]["metrics"]["auc"] == 0.95
    code, out, _ = cli("models", "versions", "churn", "--json")
    assert [v["version"] for v in json.loads(out)] == [1, 2, 3]
    code, out, _ = cli("models", "list", "--json")
    assert json.loads(out)[0]["aliases"] == {"prod": 2}


def test_user_errors_exit_2_with_hint(ws):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "roost.cli.main", "runs", "list", "--filter", "metrics.auc >"],
        capture_output=True,
        text=True,
        cwd=ws.root,
    )
    assert r.returncode == 2 and "position 14" in r.stderr and "hint:" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "roost.cli.main", "models", "show", "nope@prod"],
        capture_output=True,
        text=True,
        cwd=ws.root,
    )
    assert r.returncode == 2 and "not found" in r.stderr


def test_piped_runs_list_keeps_every_cell_whole(ws):
    """Not a terminal (a pipe, CI, a file): every column whole on one line, not squeezed into 80 characters."""
    import os
    import subprocess
    import sys

    params = {f"param_{i}": f"value-{i}-{'x' * 6}" for i in range(12)}
    with roost.start_run(experiment="wide", params=params) as run:
        run.log_metrics({f"metric_{i}": 0.123456 + i for i in range(8)})
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run(
        [sys.executable, "-m", "roost", "runs", "list", "--columns", ",".join(f"params.{k}" for k in params)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ws.root,
    ).stdout
    row = next(line for line in out.splitlines() if run.id[:8] in line)
    for v in params.values():
        assert v in row, (v, row)


def test_models_alias_delete_takes_name_and_alias_and_checks_a_given_version(ws, cli):
    """`roost models alias NAME ALIAS --delete` (as MLflow's delete_registered_model_alias(name, alias)); with a
    VERSION it removes the alias only if it points there, so a script cannot drop an alias someone moved."""
    for rid in _seed():
        roost.register_model(rid, "churn", "model")
    assert cli("models", "alias", "churn", "2", "prod")[0] == 0
    assert cli("models", "alias", "churn", "3", "canary")[0] == 0
    code, _, err = cli("models", "alias", "churn", "1", "prod", "--delete")
    assert code == 2 and "version 2" in err and "Traceback" not in err
    assert roost.resolve_model("churn@prod").version == 2  # kept
    code, out, _ = cli("models", "alias", "churn", "2", "prod", "--delete")
    assert code == 0 and "removed churn@prod" in out
    code, out, _ = cli("models", "alias", "churn", "canary", "--delete")
    assert code == 0 and "removed churn@canary" in out
    code, out, _ = cli("models", "list", "--json")
    assert json.loads(out)[0]["aliases"] == {}
    code, _, err = cli("models", "alias", "churn", "prod")  # no version, no --delete
    assert code == 2 and "VERSION" in err
