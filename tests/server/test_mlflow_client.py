"""The stock `mlflow` 3.x client (its own venv) logs, searches and registers through a real roost server process;
roost's own store is then read back and compared with what the client script was told to send (the reference).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import ServerProc

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
MLFLOW_PIN = "mlflow==3.17.2"
EXPERIMENT = "mlflow-compat"


ALICE_PW, BOB_PW = "alice's long passphrase", "bob's long passphrase"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A real `roost server` (one worker, default role none) on SQLite or a fresh PostgreSQL database, with
    accounts alice and bob (passwords); bob holds only a read grant on the test's experiment, alice edit on
    'default' (the script logs a run there) and manage on what she creates."""
    from roost.registry import grants
    from roost.registry.store import open_store

    store_url = request.getfixturevalue("pg_database")() if request.param == "postgresql" else None
    srv = ServerProc(tmp_path / "server", workers=1, store_url=store_url, default_role="none")
    srv.account("alice", ALICE_PW)
    srv.account("bob", BOB_PW)
    grants.grant(open_store(srv.store_url), "bob", "experiment", EXPERIMENT, "read")
    grants.grant(open_store(srv.store_url), "alice", "experiment", "default", "edit")  # MLflow's experiment "0"
    srv.start()
    yield srv
    srv.stop()


def _client_env(url: str, user: str, password: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": password,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
    }
    env.pop("PYTHONPATH", None)
    return env


def _spec() -> dict[str, Any]:
    rng = random.Random(31)
    now = int(time.time() * 1000)

    def run(name: str, lr: str, acc: list[float], **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "params": {"lr": lr, "layers": str(rng.randint(1, 9)), "opt": "adam w/ decay"},
            "acc": acc,
            "acc_ts": [now - 1000 * (len(acc) - i) for i in range(len(acc))],
            "batches": [{"loss": rng.random(), "f1": rng.random()} for _ in range(3)],
            "tags": {"team": "ads", "note": f"run {name}"},
            **extra,
        }

    model_files = {"MLmodel": "artifact_path: model\nflavors: {}\n", "weights.txt": "w=" + "9" * 50}
    blob = bytes(rng.randrange(256) for _ in range(70_000))
    return {
        "experiment": EXPERIMENT,
        "model": "churn",
        "add": 7,
        "inputs": [1.5, -2.0, 40.0],
        "filter": "metrics.acc > 0.5 and params.lr = '0.1'",
        "runs": [
            run("a", "0.1", [0.2, 0.55, 0.71], blob_hex=blob.hex(), model_files=model_files),
            run("b", "0.2", [0.9, 0.95]),  # lr differs
            run("c", "0.1", [0.8, 0.4]),  # latest acc 0.4
            run("d", "0.1", [0.6, 0.93]),
        ],
    }


def test_stock_mlflow_client_logs_searches_and_registers_through_roost(
    server: Any, tmp_path: Path, mlflow_python: Path
) -> None:
    from roost.registry import modelreg
    from roost.registry.store import open_store

    py = mlflow_python
    spec = _spec()
    (tmp_path / "in.json").write_text(json.dumps(spec))
    proc = subprocess.run(
        [str(py), str(HERE / "mlflow_client_script.py"), str(tmp_path / "in.json"), str(tmp_path / "out.json")],
        cwd=tmp_path,
        env=_client_env(server.url, "alice", ALICE_PW),
        capture_output=True,
        text=True,
        timeout=300,
    )
    server_log = (server.root / "server.log").read_text()
    assert proc.returncode == 0, proc.stderr[-4000:] + "\n--- server log ---\n" + server_log[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    ids = {name: r["run_id"] for name, r in out["runs"].items()}
    store = open_store(server.store_url)

    # every run, as roost stores it, is exactly what the script was told to log
    for r in spec["runs"]:
        run = store.get_run(ids[r["name"]])
        assert run["experiment"] == spec["experiment"]
        assert run["name"] == r["name"] and run["status"] == "FINISHED" and run["user"] == "alice"
        assert run["params"] == r["params"]  # MLflow's params are text, kept as text
        assert {k: run["tags"][k] for k in r["tags"]} == r["tags"]
        history = store.metric_history(run["run_id"], "acc")
        assert [(p["step"], p["value"], round(p["timestamp"] * 1000)) for p in history] == [
            (i, v, t) for i, (v, t) in enumerate(zip(r["acc"], r["acc_ts"], strict=True))
        ]
        for key in ("loss", "f1"):
            got = [(p["step"], p["value"]) for p in store.metric_history(run["run_id"], key)]
            assert got == [(i, b[key]) for i, b in enumerate(r["batches"])]
        assert run["metrics"]["acc"] == r["acc"][-1]

    # what the client read back
    a = spec["runs"][0]
    assert out["get_run"]["params"] == a["params"]
    assert out["get_run"]["metrics"]["acc"] == a["acc"][-1]
    assert {k: out["get_run"]["tags"][k] for k in a["tags"]} == a["tags"]
    assert (out["get_run"]["status"], out["get_run"]["user_id"], out["get_run"]["run_name"]) == (
        "FINISHED",
        "alice",
        "a",
    )
    assert out["history"] == [[i, v, t] for i, (v, t) in enumerate(zip(a["acc"], a["acc_ts"], strict=True))]

    # search: the filter and order computed here from the inputs, by brute force
    def latest_acc(r: dict[str, Any]) -> float:
        return float(r["acc"][-1])

    want = [r for r in spec["runs"] if latest_acc(r) > 0.5 and r["params"]["lr"] == "0.1"]
    assert out["search"] == [ids[r["name"]] for r in sorted(want, key=latest_acc, reverse=True)]
    by_acc = sorted(spec["runs"], key=latest_acc, reverse=True)
    assert out["paged"] == [ids[r["name"]] for r in by_acc]
    assert out["all_default_order"] == [ids[r["name"]] for r in reversed(spec["runs"])]  # newest first

    # the artifact went through the proxy to the run's folder, byte for byte, and comes back the same
    run_a = store.get_run(ids["a"])
    assert run_a["artifact_uri"].startswith(server.artifacts)
    stored = Path(run_a["artifact_uri"].removeprefix("file://")) / "data" / "blob.bin"
    assert stored.read_bytes().hex() == a["blob_hex"] == out["downloaded_hex"]
    assert out["runs"]["a"]["artifact_uri"] == f"mlflow-artifacts:/{out['experiment_id']}/{ids['a']}/artifacts"
    assert out["listed"] == sorted(f"model/{n}" for n in a["model_files"])

    # the model version and alias, as roost resolves them
    assert out["registered_version"] == "1" and out["alias_version"] == "1" and out["alias_run_id"] == ids["a"]
    v = modelreg.get_version(store, "churn", 1)
    assert (v.run_id, v.source, v.aliases) == (ids["a"], run_a["artifact_uri"] + "/model", ["prod"])
    moves = modelreg.alias_history(store, "churn")
    assert [(h["alias"], h["version"], h["user"]) for h in moves] == [("prod", 1, "alice")]  # the account, not the OS
    resolved = modelreg.resolve(store, "churn@prod", cache_root=tmp_path / "cache")
    assert resolved.version == 1 and resolved.local_path is not None
    assert {p.name: p.read_text() for p in resolved.local_path.iterdir()} == a["model_files"]
    out["model_download"].pop("registered_model_meta")  # written by the mlflow client into what it downloaded
    assert out["model_download"] == a["model_files"]
    assert out["search_versions"] == [["churn", "1"]]

    # MLflow 3's logged model (pyfunc.log_model): its files in its run's artifacts, registered and loaded back
    v2 = modelreg.get_version(store, "adder", 1)
    pyfunc_run = store.get_run(out["pyfunc_run_id"])
    assert (v2.run_id, v2.source) == (pyfunc_run["run_id"], pyfunc_run["artifact_uri"] + "/adder")
    assert (Path(v2.source.removeprefix("file://")) / "MLmodel").is_file()
    assert out["pyfunc_predictions"] == [x + spec["add"] for x in spec["inputs"]]

    # nested runs keep their parent; MLflow's experiment "0" is roost's default experiment
    parent_id, child_id = out["nested"]
    assert store.get_run(child_id)["parent_run_id"] == parent_id
    assert store.get_run(out["default_run"])["experiment"] == "default"

    # errors in MLflow's codes
    assert out["missing_run"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["duplicate_experiment"] == "RESOURCE_ALREADY_EXISTS"

    # bob (a read grant only) reads alice's run through the stock client, but his writes are refused
    before = {k: store.metric_history(ids["a"], k) for k in ("acc", "loss", "f1", "bob")}
    runs_before = store.search_runs(experiment=EXPERIMENT)
    bob = subprocess.run(
        [str(py), str(HERE / "mlflow_bob_script.py"), ids["a"], EXPERIMENT],
        cwd=tmp_path,
        env=_client_env(server.url, "bob", BOB_PW),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bob.returncode == 0, bob.stderr[-4000:]
    seen = json.loads(bob.stdout.strip().splitlines()[-1])
    assert seen == {"read_run_name": "a", "log_metric": "PERMISSION_DENIED", "create_run": "PERMISSION_DENIED"}
    assert {k: store.metric_history(ids["a"], k) for k in before} == before  # nothing written
    assert [r["run_id"] for r in store.search_runs(experiment=EXPERIMENT)] == [r["run_id"] for r in runs_before]
