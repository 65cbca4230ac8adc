"""The contract end to end: a package written by `roost.train` is served, and answers like roost.load_model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from servekit import Server


@pytest.mark.slow
def test_trained_package_served_matches_predictor(ws, tmp_path):
    import roost
    from roost.datasets.engagement import make_engagement
    from roost.training.api import train

    files = make_engagement(3000, ws.root / "data", seed=0)
    res = train(
        {"data": str(files["train"]), "label": "clicked", "model": {"type": "logreg"}, "register": "eng"},
        progress=False,
    )
    roost.set_alias("eng", res.version, "prod")
    predictor = roost.load_model("eng@prod")
    frame = pd.read_parquet(files["train"]).tail(20).reset_index(drop=True)
    expect = np.asarray(predictor.predict(frame), dtype=np.float64)
    names = [s["name"] for s in predictor.signature["inputs"]]
    dtypes = {s["name"]: s["dtype"] for s in predictor.signature["inputs"]}

    def value(v, dtype):
        if dtype == "string":
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return int(v) if dtype in ("int64", "int32") else float(v)

    rows = [{n: value(frame.loc[i, n], dtypes[n]) for n in names} for i in range(len(frame))]
    srv = Server(["eng@prod"], cwd=ws.root, log=tmp_path / "log", env={"ROOST_WORKSPACE": str(ws.root)})
    try:
        srv.wait_ready()
        with srv.client() as c:
            r = c.post("/v1/models/eng:predict", json={"instances": rows})
            assert r.status_code == 200, r.text
            preds = r.json()["predictions"]
            if isinstance(preds[0], dict):  # several outputs (probability, logit): one object per row
                preds = [p["probability"] for p in preds]
            got = np.array(preds, dtype=np.float64)
            assert c.get("/admin/status").json()["torch_imported"] is False  # a torch-trained model, served without
    finally:
        srv.stop()
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
