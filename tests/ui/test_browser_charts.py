"""In Chromium (issue 33 item 4): a real `model: auto` run — its parent lists the candidates with the weights it
recorded; comparing a LightGBM child (boosting rounds) with a network child (epochs) draws separate, labelled
axes; the x-axis choice changes the axis; the column picker remembers its columns per experiment."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.ui.test_browser import browser, ui_server  # noqa: F401 - fixtures shared with the main browser test

import roost
from roost.registry.api import metric_history

pytestmark = pytest.mark.browser


@pytest.fixture
def auto_run(populated, tmp_path):
    """A `model: auto` run (mlp + lightgbm candidates, blended on validation rows) in the populated workspace."""
    rng = np.random.default_rng(0)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    clicked = (x1 + 0.5 * x2 + rng.normal(0, 1, n) > 0).astype(int)
    p = tmp_path / "auto.parquet"
    pd.DataFrame({"x1": x1, "x2": x2, "clicked": clicked}).to_parquet(p)
    cfg = {
        "data": str(p),
        "label": "clicked",
        "experiment": "autoexp",
        "model": {"type": "auto", "params": {"candidates": ["mlp", "lightgbm"], "folds": 0}},
        "trainer": {"epochs": 4, "log_every": 3},  # train_loss_step every 3 mini-batches
    }
    return roost.train(cfg, progress=False)


def test_auto_parent_lists_candidates_and_compare_splits_step_kinds(auto_run, ui_server, browser):  # noqa: F811
    base, res = ui_server["base"], auto_run
    kids = {k["tags"]["roost.model_type"]: k for k in roost.search_runs(f"parent_run_id = '{res.run_id}'")}
    assert set(kids) == {"mlp", "lightgbm"}
    page = browser.new_page(viewport={"width": 1300, "height": 1000})

    # the parent: a row per candidate, its validation score and the weight the run recorded
    page.goto(base + f"/runs/{res.run_id}")
    rows = page.locator("#auto-candidates tbody tr[data-candidate]")
    assert rows.count() == 2
    for name in ("mlp", "lightgbm"):
        row = page.locator(f"#auto-candidates tr[data-candidate='{name}']")
        assert float(row.locator("td.weight").get_attribute("data-weight")) == pytest.approx(res.weights[name])
        assert float(row.locator("td.score").inner_text()) == pytest.approx(res.candidates[name]["val_roc_auc"], 1e-5)
        assert row.locator(f"a[href='/runs/{kids[name]['run_id']}']").count() == 1
    page.wait_for_selector("#charts[data-ready='1']")
    assert "No per-epoch metrics" not in page.locator("#charts").inner_text()

    # compare the candidates: val_loss of LightGBM (boosting rounds) and mlp (epochs) on separate axes
    page.click("#compare-candidates")
    page.wait_for_selector("#charts[data-ready='1']")
    assert kids["lightgbm"]["tags"]["roost.step_kind"] == "boosting_round"
    assert kids["mlp"]["tags"]["roost.step_kind"] == "epoch"
    figs = page.locator("figure.chart[data-metric='val_loss']")
    assert figs.count() == 2
    labels = {
        figs.nth(i).get_attribute("data-kind"): figs.nth(i).locator("svg").get_attribute("data-xlabel") for i in (0, 1)
    }
    assert labels == {"boosting_round": "boosting round", "epoch": "epoch"}
    rounds = page.locator("figure.chart[data-metric='val_loss'][data-kind='boosting_round']")
    assert rounds.locator("path.series").count() == 1
    assert rounds.locator("path.series").get_attribute("data-run") == kids["lightgbm"]["run_id"]
    assert "per epoch" not in page.locator("h2", has_text="Curves").inner_text()

    # the x-axis choice: wall time turns the axis into dates, relative time into seconds since the start
    svg = page.locator("figure.chart[data-metric='val_loss'][data-kind='epoch'] svg")
    assert svg.get_attribute("data-x") == "step" and float(svg.get_attribute("data-xmax")) == 4
    page.select_option("#charts-x", "wall")
    svg = page.locator("figure.chart[data-metric='val_loss'][data-kind='epoch'] svg")
    assert svg.get_attribute("data-x") == "time" and svg.get_attribute("data-xlabel") == "wall time (UTC)"
    started = roost.get_run(kids["mlp"]["run_id"])["start_time"].timestamp() * 1000
    assert float(svg.get_attribute("data-xmin")) >= started - 1000
    page.select_option("#charts-x", "relative")
    svg = page.locator("figure.chart[data-metric='val_loss'][data-kind='epoch'] svg")
    assert svg.get_attribute("data-xlabel") == "seconds since the run started"
    assert 0 <= float(svg.get_attribute("data-xmin")) < float(svg.get_attribute("data-xmax")) < 600
    page.select_option("#charts-x", "epoch")  # mini-batch steps in epochs (the run's steps per epoch); rounds stay
    net = roost.get_run(kids["mlp"]["run_id"])
    per_epoch = int(net["tags"]["roost.steps_per_epoch"])
    steps = [m["step"] for m in metric_history(net["run_id"], "train_loss_step")]
    batch = page.locator("figure.chart[data-metric='train_loss_step'][data-kind='batch'] svg")
    assert batch.get_attribute("data-xlabel") == "epoch (from mini-batch steps)"
    assert float(batch.get_attribute("data-xmax")) == pytest.approx(max(steps) / per_epoch)
    rounds_svg = page.locator("figure.chart[data-metric='val_loss'][data-kind='boosting_round'] svg")
    assert rounds_svg.get_attribute("data-xlabel") == "boosting round (no epochs)"
    page.check("#charts-log")
    assert page.locator("figure.chart[data-metric='val_loss'] svg[data-scale='log']").count() == 2
    page.close()


def test_column_picker_is_remembered_per_experiment(populated, ui_server, browser):  # noqa: F811
    base = ui_server["base"]
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto(base + "/runs?experiment=churn")
    col = "th[data-col='params.layers']"
    assert page.locator(col).is_hidden()
    page.click("#col-picker summary")
    page.check("#col-picker input[data-col='params.layers']")
    page.uncheck("#col-picker input[data-col='metrics.auc']")
    assert page.locator(col).is_visible() and page.locator("th[data-col='metrics.auc']").is_hidden()
    page.reload()
    assert page.locator(col).is_visible() and page.locator("th[data-col='metrics.auc']").is_hidden()
    stored = json.loads(page.evaluate("localStorage.getItem('roost.runs.columns:churn')"))
    assert stored == {"params.layers": True, "metrics.auc": False}
    # another scope keeps its own defaults
    page.goto(base + "/runs")
    assert page.locator("th[data-col='metrics.auc']").is_visible()
    page.close()
