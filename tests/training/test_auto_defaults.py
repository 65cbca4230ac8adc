"""auto's candidates cover LightGBM's library defaults, so auto never loses much to a plain `LGBMClassifier()`."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import roost
from roost.training.auto import DEFAULT_CANDIDATES, candidate_config, prepare
from roost.training.config import load_config
from roost.training.lgbm import LightGBMModel


def xor_table(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """A pure three-way interaction (sign parity of x0, x1, x2; 10 % label noise) and three noise columns: no single
    split helps, so small, slow, early-stopped trees stop at a few rounds while the library defaults find it."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 6))
    parity = np.sign(X[:, 0]) * np.sign(X[:, 1]) * np.sign(X[:, 2]) > 0
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    df["label"] = (rng.random(n) < np.where(parity, 0.9, 0.1)).astype(np.int64)
    return df


def test_a_default_candidate_fits_exactly_what_lgbmclassifier_fits(tmp_path) -> None:
    names = [c for c in DEFAULT_CANDIDATES if c != "lightgbm"]
    df = xor_table(600)
    X, y = df.drop(columns=["label"]), df["label"]
    cfg = load_config({"data": str(tmp_path / "unused.parquet"), "label": "label"})
    ref = lgb.LGBMClassifier(verbose=-1).fit(X.to_numpy(np.float32), y).predict_proba(X.to_numpy(np.float32))[:, 1]
    matches = []
    for name in names:
        sub = candidate_config(cfg, name, len(df), X.shape[1])
        if sub.model.type != "lightgbm":
            continue
        m = LightGBMModel(task="binary", **{**sub.model.params, "seed": 0})
        m.fit(X, y, X.iloc[:100], y.iloc[:100])  # a validation part must not early-stop the defaults
        matches.append(np.allclose(m.predict(X), ref, rtol=0, atol=1e-12))
    assert any(matches), "no auto candidate fits LightGBM's library defaults"


def test_auto_is_within_0005_of_lightgbm_defaults_where_they_win(ws, tmp_path) -> None:
    """On the xor table the small-table LightGBM candidate alone loses far more than 0.005 to the defaults."""
    data = tmp_path / "xor.parquet"
    xor_table().to_parquet(data)
    cands = [c for c in DEFAULT_CANDIDATES if c != "wide_deep"]  # the network is slow and irrelevant here
    cfg = {"data": str(data), "label": "label", "model": {"type": "auto", "params": {"candidates": cands}}}
    res = roost.train(cfg, progress=False)
    _, _, _, (train, val, test) = prepare(cfg)
    rest = pd.concat([train, val])
    ref = lgb.LGBMClassifier(verbose=-1).fit(rest.drop(columns=["label"]), rest["label"])
    want = roc_auc_score(test["label"], ref.predict_proba(test.drop(columns=["label"]))[:, 1])
    small = res.candidates["lightgbm"]["test_roc_auc"]
    assert small < want - 0.05  # the table is one where the defaults win
    assert res.metrics["test_roc_auc"] >= want - 0.005
    assert res.weights["lightgbm_defaults"] > 0
