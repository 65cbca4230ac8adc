"""`roost train` from the feature store: PIT training set in, feature refs in the package, served by entity id."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import roost
import roost.features as rf
from roost.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fs_ws(ws):
    from roost.datasets.engagement import make_engagement

    make_engagement(6000, ws.root / "data", seed=3)
    shutil.copytree(ROOT / "examples" / "engagement" / "features", ws.root / "features")
    rf.apply()
    imps = pd.read_parquet(ws.root / "data" / "impressions.parquet")
    imps[["impression_id", "user_id", "item_id", "event_time", "clicked"]].to_parquet(ws.root / "entities.parquet")
    return ws


def test_train_from_feature_store_and_serve_by_entity_id(fs_ws, tmp_path):
    cfg = {
        "data": {
            "entities": "entities.parquet",
            "features": ["user_stats:clicks_7d", "user_stats:country", "item_stats:price", "item_stats:category"],
        },
        "label": "clicked",
        "model": "logreg",
        "trainer": {"epochs": 2},
        "features": {"include": ["clicks_7d", "country", "price", "category"]},
        "register": "fs-model",
    }
    res = roost.train(cfg, progress=False)
    v = roost.resolve_model("fs-model/1")
    assert v.meta["feature_refs"] == [
        "user_stats:clicks_7d",
        "user_stats:country",
        "item_stats:price",
        "item_stats:category",
    ]
    assert sorted(v.meta["entities"]) == ["item_id", "user_id"]
    # the training rows are exactly roost.features.training_set of the entity rows
    ents = pd.read_parquet(fs_ws.root / "entities.parquet")
    ts = rf.training_set(ents, ["user_stats:clicks_7d", "item_stats:price"])
    assert len(ts) == len(ents) and roost.get_run(res.run_id)["params"]["data.rows"] == len(ents)
    # materialise now; the server fetches the same features online for entity-id requests
    rf.materialize(end=ents["event_time"].max())
    ids = ents.tail(5)
    online = rf.online(
        ["user_stats:clicks_7d", "user_stats:country", "item_stats:price", "item_stats:category"],
        {"user_id": ids["user_id"].tolist(), "item_id": ids["item_id"].tolist()},
    )
    expected = roost.load_model("fs-model/1").predict(online)
    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from servekit import Server

    srv = Server(
        ["fs-model/1"], cwd=fs_ws.root, log=tmp_path / "srv.log", env={"ROOST_WORKSPACE": str(fs_ws.root)}
    ).wait_ready(timeout=120)
    try:
        with srv.client() as c:
            r = c.post(
                "/v1/models/fs-model:predict",
                json={"inputs": {"user_id": ids["user_id"].tolist(), "item_id": ids["item_id"].tolist()}},
            )
            assert r.status_code == 200, r.text
            got = np.asarray(r.json()["outputs"]["probability"], dtype=float)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    finally:
        srv.stop()


def test_data_config_needs_one_source(ws):
    with pytest.raises(ConfigError) as e:
        roost.train({"data": {"entities": "e.parquet"}, "label": "y"}, progress=False)
    assert "data.features" in e.value.message
    with pytest.raises(ConfigError) as e:
        roost.train(
            {"data": {"source": "a.parquet", "entities": "e.parquet", "features": ["v:x"]}, "label": "y"},
            progress=False,
        )
    assert "either data.source or data.entities" in e.value.message


def test_training_stores_a_monitoring_reference(ws):
    """Every run keeps profile.json, reference.parquet and evaluation.parquet; drift against the run works."""
    from roost import artifacts
    from roost.datasets import load

    res = roost.train(
        {"data": "sklearn:breast_cancer", "label": "target", "model": "logreg", "trainer": {"epochs": 2}},
        progress=False,
    )
    files = {f["path"] for f in artifacts.list_files(roost.get_run(res.run_id)["artifact_uri"])}
    assert {"profile.json", "reference.parquet", "evaluation.parquet"} <= files
    df = load("sklearn:breast_cancer")
    shifted = df.assign(**{"mean radius": df["mean radius"] * 1.5})
    from roost.monitor import drift

    rep = drift(res.run_id, shifted)
    flagged = {f.feature for f in rep.features if f.drifted}
    assert "mean radius" in flagged and "mean texture" not in flagged


def test_train_hooks_parent_tags_and_epoch_callbacks(ws):
    """The hooks tuning uses: a parent run, extra tags, and per-epoch callbacks that can stop training."""

    class Stop(Exception):
        pass

    seen = []

    class Cb:
        def on_epoch_end(self, state, logs):
            seen.append(dict(logs))
            if len(seen) == 2:
                raise Stop

    with roost.start_run(name="tuning") as parent:
        pass
    res = roost.train(
        {"data": "sklearn:breast_cancer", "label": "target", "model": "mlp", "trainer": {"epochs": 3}},
        progress=False,
        parent_run_id=parent.id,
        tags={"trial": 7},
    )
    r = roost.get_run(res.run_id)
    assert r["parent_run_id"] == parent.id and r["tags"]["trial"] == "7"
    with pytest.raises(Stop):
        roost.train(
            {"data": "sklearn:breast_cancer", "label": "target", "model": "mlp", "trainer": {"epochs": 5}},
            progress=False,
            callbacks=[Cb()],
        )
    assert len(seen) == 2 and all("val_loss" in s for s in seen)
