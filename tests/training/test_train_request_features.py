"""`roost train` with a request-time feature: the package declares its request fields and the server computes the
feature from the request, giving the predictions of the trained model on the library's online rows."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import roost
import roost.features as rf

ROOT = Path(__file__).resolve().parents[2]
CTX = """\
from roost.features import RequestView


def pos_feats(df):
    return {"pos_ratio": df["position"] / (1 + df["clicks_7d"].fillna(0))}


ctx = RequestView(
    "ctx",
    request={"position": "int64"},
    sources=["user_stats:clicks_7d"],
    fields={"pos_ratio": "float64"},
    transform=pos_feats,
)
"""


def test_train_with_a_request_view_and_serve_it(ws, tmp_path):
    from roost.datasets.engagement import make_engagement

    make_engagement(3000, ws.root / "data", seed=5)
    shutil.copytree(ROOT / "examples" / "engagement" / "features", ws.root / "features")
    (ws.root / "features" / "ctx.py").write_text(CTX)
    rf.apply()
    imps = pd.read_parquet(ws.root / "data" / "impressions.parquet")
    ents = imps[["user_id", "event_time", "clicked"]].copy()
    ents["position"] = np.random.default_rng(0).integers(1, 10, len(ents))
    ents.to_parquet(ws.root / "entities.parquet")
    refs = ["user_stats:clicks_7d", "ctx:pos_ratio"]
    cfg = {
        "data": {"entities": "entities.parquet", "features": refs},
        "label": "clicked",
        "model": "logreg",
        "trainer": {"epochs": 2},
        "features": {"include": ["clicks_7d", "pos_ratio"]},
        "register": "rq-model",
    }
    roost.train(cfg, progress=False)
    v = roost.resolve_model("rq-model/1")
    assert v.meta["feature_refs"] == refs and v.meta["entities"] == ["user_id"]
    assert v.meta["request_fields"] == {"position": "int64"}
    rf.materialize(end=ents["event_time"].max())
    tail = ents.tail(6)
    ids, pos = tail["user_id"].tolist(), [int(p) for p in tail["position"]]
    online = rf.online(refs, {"user_id": ids}, request_data={"position": pos})
    expected = roost.load_model("rq-model/1").predict(online)
    sys.path.insert(0, str(ROOT / "tests" / "serve"))
    from servekit import Server

    srv = Server(["rq-model/1"], cwd=ws.root, log=tmp_path / "srv.log", env={"ROOST_WORKSPACE": str(ws.root)})
    srv.wait_ready(timeout=120)
    try:
        with srv.client() as c:
            r = c.post("/v1/models/rq-model:predict", json={"inputs": {"user_id": ids, "position": pos}})
            assert r.status_code == 200, r.text
            got = np.asarray(r.json()["outputs"]["probability"], dtype=float)
            r = c.post(
                "/v1/models/rq-model:predict", json={"inputs": {"user_id": ids, "position": [p + 5 for p in pos]}}
            )
            moved = np.asarray(r.json()["outputs"]["probability"], dtype=float)
            assert np.abs(moved - got).max() > 1e-4  # the request field reaches the model
            r = c.post("/v1/models/rq-model:predict", json={"inputs": {"user_id": ids}})
            assert r.status_code == 400 and "'position'" in r.json()["error"], r.text
        np.testing.assert_allclose(got, expected, atol=1e-6)
    finally:
        srv.stop()
