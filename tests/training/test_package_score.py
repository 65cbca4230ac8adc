"""The reported test metrics are the exported float32 package's own score on the test rows (ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score

import roost
from roost.training.auto import prepare


@pytest.mark.parametrize("model, label", [("lightgbm", "clicked"), ("logreg", "clicked"), ("lightgbm", "score")])
def test_reported_test_metric_is_the_packages_own_score(ws, tmp_path, frame, model, label) -> None:
    from roost.modelpkg import load

    data = tmp_path / "d.parquet"
    other = [c for c in ("clicked", "kind", "score") if c != label]
    frame.drop(columns=other).to_parquet(data)
    cfg = {"data": str(data), "label": label, "model": model, "split": {"method": "random", "seed": 0}}
    res = roost.train(cfg, progress=False)
    test = prepare(cfg)[3][2]
    out = np.asarray(load(res.package_path).predict(test), dtype=np.float64)  # the package through ORT
    y = test[label].to_numpy()
    if label == "clicked":
        assert res.metrics["test_roc_auc"] == pytest.approx(roc_auc_score(y, out), abs=1e-12)
        assert res.metrics["test_log_loss"] == pytest.approx(log_loss(y, out), rel=1e-9)
    else:
        assert res.metrics["test_rmse"] == pytest.approx(mean_squared_error(y, out) ** 0.5, rel=1e-9)
