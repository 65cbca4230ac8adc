"""`model: auto` under a time budget (finishes on time, records what it skipped) and the refit on all rows."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

import roost
from helpers import mixed_frame
from roost.errors import ConfigError
from roost.training.auto import prepare

FEATURES = ["x1", "x2", "color", "user_id"]


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "d.parquet"
    mixed_frame(600).to_parquet(p)
    return p


def test_a_tiny_budget_finishes_on_time_and_records_what_it_skipped(ws, data, cli) -> None:
    cfg = {"data": str(data), "label": "clicked", "features": FEATURES, "model": "auto", "time_budget": "1s"}
    t0 = time.monotonic()
    res = roost.train(cfg, progress=False)
    took = time.monotonic() - t0
    assert took < 90  # generous: one child trains whatever the budget (2-4 s quiet; the machine may be loaded)
    assert res.budget_s == 1.0 and res.elapsed_s is not None and res.elapsed_s <= took
    assert res.skipped and any(s.startswith("candidate ") for s in res.skipped)
    assert len(res.candidates or {}) < 4  # not every candidate trained
    parent = roost.get_run(res.run_id)
    assert json.loads(parent["tags"]["roost.auto.skipped"]) == res.skipped
    assert parent["params"]["auto.time_budget_s"] in ("1.0", 1.0)
    assert (
        res.package_path.exists() and roost.load_model(res.package_path).predict(mixed_frame(5)[FEATURES]) is not None
    )
    # the CLI summary says what was skipped
    cfg_file = data.parent / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({**cfg, "time_budget": None}))
    code, out, _ = cli("train", str(cfg_file), "--time-budget", "1s")
    assert code == 0 and "skipped:" in out and "budget 1 s" in out


@pytest.mark.parametrize("bad", ["abc", "-5", "0s", "5 parsecs"])
def test_a_bad_time_budget_is_refused_naming_the_flag(ws, data, cli, bad) -> None:
    cfg_file = data.parent / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"data": str(data), "label": "clicked"}))
    code, _, err = cli("train", str(cfg_file), f"--time-budget={bad}")
    assert code == 2 and "--time-budget" in err
    with pytest.raises(ConfigError, match="time_budget"):
        roost.train({"data": str(data), "label": "clicked", "time_budget": bad}, progress=False)
    assert roost.search_runs() == []


def test_refit_keeps_the_held_out_test_metric_and_registers_the_blend_refitted_on_all_rows(ws, data) -> None:
    base = {
        "data": str(data),
        "label": "clicked",
        "features": FEATURES,
        "time_budget": None,
        "split": {"method": "random", "seed": 0},
    }
    auto = {"type": "auto", "params": {"candidates": ["lightgbm", "lightgbm_defaults"], "folds": 3}}
    held = roost.train({**base, "model": {**auto, "params": {**auto["params"], "refit": False}}}, progress=False)
    refit = roost.train({**base, "model": auto}, progress=False)
    assert held.refit == "" and "refitted on all 600 rows (3 folds" in refit.refit
    assert roost.get_run(refit.run_id)["tags"]["roost.auto.refit"] == refit.refit
    assert refit.weights == held.weights  # the weights come from the same held-out folds
    # the reported test metric is the held-out blend's, in both runs (the refit one's from the in-memory blend)
    assert refit.metrics["test_roc_auc"] == pytest.approx(held.metrics["test_roc_auc"], abs=2e-4)
    assert "refit_oof_roc_auc" in refit.metrics and "refit_oof_roc_auc" not in held.metrics
    test = prepare({**base, "model": "auto"})[3][2]
    y = test["clicked"].to_numpy()

    def package_auc(res) -> float:
        return float(roc_auc_score(y, np.asarray(roost.load_model(res.package_path).predict(test[FEATURES]))))

    assert package_auc(held) == pytest.approx(held.metrics["test_roc_auc"], abs=1e-12)  # its own package's score
    # the registered package is another model: refitted with the test rows in, it scores them differently
    assert package_auc(refit) != pytest.approx(refit.metrics["test_roc_auc"], abs=1e-6)
    meta = roost.load_model(refit.package_path).meta
    assert meta["metrics"]["test_roc_auc"] == pytest.approx(refit.metrics["test_roc_auc"], abs=1e-12)


def test_fold_networks_export_as_one_graph_equal_to_the_weighted_members(tmp_path) -> None:
    from roost.training.ensemble import Blend, _export_groups
    from roost.training.models import make_model
    from roost.training.preprocess import infer_spec

    df, test = mixed_frame(400), mixed_frame(80, seed=5)
    test.loc[::4, "color"] = "ultraviolet"
    X, y = df[FEATURES], df["clicked"]
    spec = infer_spec(df[[*FEATURES, "clicked"]], label="clicked")
    nets = [
        make_model("logreg", "binary", epochs=2, seed=k).fit(X[:300], y[:300], X[300:], y[300:], spec=spec)
        for k in (0, 1)
    ]
    gb = make_model("lightgbm", "binary", n_estimators=20).fit(X[:300], y[:300], X[300:], y[300:], spec=spec)
    members, w = [("logreg", nets[0]), ("lightgbm", gb), ("logreg", nets[1])], [0.3, 0.5, 0.2]
    assert _export_groups(members) == [([0, 2], True), ([1], False)]  # the two networks: one export
    pkg = Blend(members, w).save_package(tmp_path / "pkg", test[FEATURES], label="clicked")
    expected = sum(wk * m.predict(test[FEATURES]) for (_, m), wk in zip(members, w))
    got = np.asarray(roost.load_model(pkg).predict(test[FEATURES]))
    np.testing.assert_allclose(got, expected, atol=2e-5)
