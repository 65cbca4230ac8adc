"""`roost serve MODEL --index NAME`: vector search served next to the models, on the same port."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from servekit import Server, breast_cancer, logreg_package


def test_models_and_index_on_one_server(ws, tmp_path):
    from roost.ann import build_index

    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    pd.DataFrame({"item_id": np.arange(500), "embedding": list(x)}).to_parquet(ws.root / "emb.parquet")
    build_index("items", str(ws.root / "emb.parquet"), id_column="item_id")
    pkg = logreg_package(tmp_path / "bc")
    srv = Server(
        [str(pkg), "--index", "items"], cwd=ws.root, log=tmp_path / "srv.log", env={"ROOST_WORKSPACE": str(ws.root)}
    ).wait_ready(timeout=120)
    try:
        with srv.client() as c:
            q = x[7] + 0.001
            r = c.post("/v1/indexes/items/search", json={"vector": q.tolist(), "k": 3})
            assert r.status_code == 200, r.text
            hits = r.json()["results"][0]
            brute = np.argsort(-(x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q)))[:3]
            assert [h["id"] for h in hits] == brute.tolist()
            bad = c.post("/v1/indexes/items/search", json={"vector": [0.0] * 5, "k": 3})
            assert 400 <= bad.status_code < 500 and "5" in bad.text and "16" in bad.text
            assert c.post("/v1/indexes/nope/search", json={"vector": q.tolist()}).status_code == 404
            X, _, cols = breast_cancer()
            body = {
                "inputs": [
                    {"name": n, "shape": [1], "datatype": "FP32", "data": [float(X[0, i])]} for i, n in enumerate(cols)
                ]
            }
            assert c.post("/v2/models/bc/infer", json=body).status_code == 200  # the model, same port
    finally:
        srv.stop()
