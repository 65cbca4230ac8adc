"""`roost lineage`: a served request traced back to the exact run, data fingerprint and feature view versions."""

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import roost
import roost.features as rf

ROOT = Path(__file__).resolve().parents[1]
REFS = ["user_stats:clicks_7d", "user_stats:country", "item_stats:price", "item_stats:category"]
TS = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def _trained_template(tmp_path_factory: pytest.TempPathFactory):
    """Trained once per module (training is this file's cost): a logreg from the feature store, fs-model/1 @prod."""
    from roost import workspace
    from roost.datasets.engagement import make_engagement

    root = tmp_path_factory.mktemp("lineage") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
            mp.delenv(var, raising=False)
        w = roost.init(root)
        mp.chdir(root)
        workspace.use(w)
        try:
            make_engagement(1500, root / "data", seed=5)
            shutil.copytree(ROOT / "examples" / "engagement" / "features", root / "features")
            rf.apply()
            imps = pd.read_parquet(root / "data" / "impressions.parquet")
            imps[["impression_id", "user_id", "item_id", "event_time", "clicked"]].to_parquet(root / "entities.parquet")
            cfg = {
                "data": {"entities": "entities.parquet", "features": REFS},
                "label": "clicked",
                "model": "logreg",
                "trainer": {"epochs": 1},
                "features": {"include": ["clicks_7d", "country", "price", "category"]},
                "register": "fs-model",
            }
            res = roost.train(cfg, progress=False)
            roost.set_alias("fs-model", 1, "prod")
        finally:
            workspace.use(None)
    return root, res


@pytest.fixture
def trained(_trained_template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of the trained workspace, made current: a test may change its definitions, logs and store.

    (The run's artifacts stay in the template's folder, which no test writes to.)
    """
    from roost import workspace

    template, res = _trained_template
    for var in ("ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_WORKSPACE", "ROOST_ONLINE_STORE"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    w = workspace.use(root)
    yield w, res
    workspace.use(None)


def _sha(spec: dict) -> str:
    """The test's own definition hash: sha256 of the registered spec's canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_log(folder: Path, model: str, version: str, rid: str, users: list[int], items: list[int]) -> Path:
    """One request-log file in the serve contract's format (entity keys, online feature times, metadata)."""
    n = len(users)
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    ev = [now if i else None for i in range(n)]  # row 0: missing online for user_stats
    cols = {
        "_ts": pa.array([now] * n, TS),
        "_request_id": pa.array([rid] * n),
        "_model": pa.array([model] * n),
        "_version": pa.array([version] * n),
        "_protocol": pa.array(["v1"] * n),
        "_latency_ms": pa.array([1.5] * n, pa.float32()),
        "_row": pa.array(list(range(n)), pa.int32()),
        "clicks_7d": pa.array([3.0] * n),
        "price": pa.array([9.5] * n),
        "user_id": pa.array(users, pa.int64()),
        "item_id": pa.array(items, pa.int64()),
        "_fs_event_time.user_stats": pa.array(ev, TS),
        "_fs_created_time.user_stats": pa.array(ev, TS),
        "_fs_event_time.item_stats": pa.array([now] * n, TS),
        "_fs_created_time.item_stats": pa.array([now] * n, TS),
        "pred_probability": pa.array([0.25] * n, pa.float32()),
    }
    meta = {
        "roost.feature_refs": json.dumps({"clicks_7d": "user_stats:clicks_7d", "price": "item_stats:price"}),
        "roost.entities": json.dumps(["user_id", "item_id"]),
    }
    table = pa.table(cols).replace_schema_metadata(meta)
    day = folder / model / "2026-12-04"
    day.mkdir(parents=True, exist_ok=True)
    path = day / f"120000-{rid}.parquet"
    pq.write_table(table, path)
    return path


def test_lineage_of_a_served_request_names_run_fingerprint_and_view_versions(trained, cli):
    ws, res = trained
    logs = ws.root / ".roost" / "request_logs"
    _write_log(logs, "fs-model", "1", "777-3", [11, 12, 13], [5, 6, 7])
    # another model's file with a different schema in the same folder must not get in the way
    other = pa.table({"_request_id": ["9-9"], "_model": ["other"], "_version": ["2"], "x": [1.0]})
    (logs / "other" / "2026-12-04").mkdir(parents=True)
    pq.write_table(other, logs / "other" / "2026-12-04" / "a.parquet")

    code, out, err = cli("lineage", "777-3", "--json")
    assert code == 0, err
    lin = json.loads(out)
    assert lin["kind"] == "request"
    assert lin["request"]["rows"] == 3 and lin["request"]["entities"] == {"user_id": [11, 12, 13], "item_id": [5, 6, 7]}
    assert lin["request"]["online_features"]["user_stats"]["missing_rows"] == 1
    assert lin["model_version"]["name"] == "fs-model" and lin["model_version"]["version"] == 1
    assert lin["run"]["run_id"] == res.run_id
    # the fingerprint of the training frame, recomputed here from the entity rows and the feature store
    ents = pd.read_parquet(ws.root / "entities.parquet")
    frame = rf.training_set(ents, REFS).reset_index(drop=True)
    assert lin["data"]["fingerprint"] == roost.datasets.fingerprint(frame)
    assert lin["data"]["rows"] == len(ents)
    assert lin["data"]["train_rows"] + lin["data"]["val_rows"] + lin["data"]["test_rows"] == len(ents)
    views = rf.list_definitions()["view"]
    sources = rf.list_definitions()["source"]
    got = {v["name"]: v for v in lin["feature_views"]}
    assert set(got) == {"user_stats", "item_stats"}
    for name, v in got.items():
        assert v["definition_version"] == _sha(views[name]) and v["changed_since_training"] is False
        assert v["ttl_seconds"] == views[name]["ttl_seconds"]
        assert v["source"]["path"] == sources[views[name]["source"]]["path"]
    assert set(got["user_stats"]["fields"]) == {"clicks_7d", "country"}
    assert got["user_stats"]["join_keys"] == {"user_id": views["user_stats"]["join_keys"]["user_id"]}

    code, text, err = cli("lineage", "777-3")
    assert code == 0, err
    assert res.run_id in text and lin["data"]["fingerprint"] in text and "user_stats" in text


def test_lineage_of_an_alias_and_of_a_run(trained, cli):
    ws, res = trained
    code, out, err = cli("lineage", "fs-model@prod", "--json")
    assert code == 0, err
    by_alias = json.loads(out)
    assert by_alias["kind"] == "model_version" and by_alias["model_version"]["aliases"] == ["prod"]
    assert by_alias["run"]["run_id"] == res.run_id
    code, out, err = cli("lineage", res.run_id[:10], "--json")
    assert code == 0, err
    by_run = json.loads(out)
    assert by_run["kind"] == "run" and by_run["run"]["run_id"] == res.run_id
    assert by_run["data"] == by_alias["data"] and by_run["feature_views"] == by_alias["feature_views"]
    # the artifact the training logged: one record per view read
    feats = json.loads(
        Path(roost.get_run(res.run_id)["artifact_uri"].removeprefix("file://"), "features.json").read_text()
    )
    assert [v["name"] for v in feats["views"]] == ["user_stats", "item_stats"]


def test_a_changed_definition_is_flagged(trained):
    ws, res = trained
    path = ws.root / "features" / "engagement.py"
    src = path.read_text()
    assert "timedelta(days=2)" in src
    path.write_text(src.replace("timedelta(days=2)", "timedelta(days=3)", 1))
    rf.apply()
    lin = roost.lineage.lineage(res.run_id)
    got = {v["name"]: v for v in lin["feature_views"]}
    assert got["user_stats"]["changed_since_training"] is True
    assert got["user_stats"]["current_definition_version"] == _sha(rf.list_definitions()["view"]["user_stats"])
    assert got["item_stats"]["changed_since_training"] is False


def test_unknown_ids_fail_with_the_closest_matches(trained, cli):
    ws, res = trained
    logs = ws.root / ".roost" / "request_logs"
    _write_log(logs, "fs-model", "1", "4242-17", [1], [2])
    typo = res.run_id[:-1] + ("0" if res.run_id[-1] != "0" else "1")
    code, _, err = cli("lineage", typo)
    assert code == 2 and res.run_id in err
    code, _, err = cli("lineage", "4242-18")
    assert code == 2 and "4242-17" in err
    code, _, err = cli("lineage", "fs-model@prdo")
    assert code == 2 and "fs-model@prod" in err
    with pytest.raises(roost.RoostError):
        roost.lineage.lineage("nothing-like-it", log_dir=ws.root / "missing")


def test_a_model_trained_from_a_file_has_no_feature_views(ws):
    res = roost.train(
        {"data": "sklearn:iris", "label": "target", "model": "logreg", "trainer": {"epochs": 1}, "register": "iris"},
        progress=False,
    )
    lin = roost.lineage.lineage("iris/1")
    assert lin["run"]["run_id"] == res.run_id and lin["feature_views"] == []
    assert lin["data"]["source"] == "sklearn:iris"
    assert lin["data"]["fingerprint"] == roost.datasets.fingerprint(roost.datasets.load("sklearn:iris"))


def test_ui_shows_lineage_on_the_run_and_model_pages(trained):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    ws, res = trained
    views = rf.list_definitions()["view"]
    fp = roost.get_run(res.run_id)["params"]["data.fingerprint"]
    with TestClient(create_app(), follow_redirects=False) as c:
        for page in (f"/runs/{res.run_id}", "/models/fs-model"):
            r = c.get(page)
            assert r.status_code == 200, r.text
            block = r.text.split('id="lineage"', 1)[1]
            assert fp in block
            for name in ("user_stats", "item_stats"):
                assert f"View {name}" in block and _sha(views[name]) in block
        assert res.run_id in c.get("/models/fs-model").text.split('id="lineage"', 1)[1]


@pytest.mark.slow
def test_lineage_of_a_request_served_by_entity_ids(trained, cli, tmp_path):
    """Served for real: `roost serve fs-model@prod --log-requests 1` logs into the workspace's default folder."""
    import sys

    ws, res = trained
    ents = pd.read_parquet(ws.root / "entities.parquet")
    rf.materialize(end=ents["event_time"].max())
    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from servekit import Server

    env = {"ROOST_WORKSPACE": str(ws.root)}
    srv = Server(["fs-model@prod"], "--log-requests", "1", cwd=ws.root, log=tmp_path / "srv.log", env=env)
    try:
        srv.wait_ready(timeout=180)
        ids = ents.tail(4)
        with srv.client() as c:
            body = {"inputs": {"user_id": ids["user_id"].tolist(), "item_id": ids["item_id"].tolist()}}
            r = c.post("/v1/models/fs-model:predict", json=body)
            assert r.status_code == 200, r.text
    finally:
        srv.stop()
    files = list((ws.root / ".roost" / "request_logs").glob("*/*/*.parquet"))
    rids = {x for f in files for x in pq.read_table(f, columns=["_request_id"])["_request_id"].to_pylist()}
    assert len(rids) == 1, srv.output()
    code, out, err = cli("lineage", rids.pop(), "--json")
    assert code == 0, err
    lin = json.loads(out)
    assert lin["request"]["rows"] == 4 and lin["model_version"]["aliases"] == ["prod"]
    assert lin["run"]["run_id"] == res.run_id
    frame = rf.training_set(ents, REFS).reset_index(drop=True)
    assert lin["data"]["fingerprint"] == roost.datasets.fingerprint(frame)
    views = rf.list_definitions()["view"]
    assert {v["name"]: v["definition_version"] for v in lin["feature_views"]} == {
        n: _sha(views[n]) for n in ("user_stats", "item_stats")
    }
