"""Chart payload (issue 33 item 4): curves of different step kinds never share an axis, axes say what the step
counts (also for runs logged before training recorded `roost.step_kind`), one-point metrics are values."""

from __future__ import annotations

import pytest

import roost


@pytest.fixture
def three(ws):
    """An old LightGBM run (rounds 10..130), an old torch run (epochs 1..3) and a user's run with steps 0..99."""
    ids = {}
    with roost.start_run(experiment="k", name="gbm", tags={"roost.framework": "lightgbm"}) as r:
        for i, rnd in enumerate(range(10, 140, 10)):
            r.log_metric("val_loss", 0.7 - 0.01 * i, step=rnd)
        r.log_metric("test_auc", 0.81)
        ids["gbm"] = r.id
    with roost.start_run(experiment="k", name="net", tags={"roost.framework": "torch"}) as r:
        for epoch in (1, 2, 3):
            r.log_metrics({"val_loss": 0.6 / epoch}, step=epoch)
        for step in (0, 50, 100):
            r.log_metric("train_loss_step", 1.0 - step / 200, step=step)
        r.log_metric("test_auc", 0.79)
        ids["net"] = r.id
    with roost.start_run(experiment="k", name="mine") as r:
        for step in range(100):
            r.log_metric("val_loss", 1.0 / (step + 1), step=step)
        ids["mine"] = r.id
    return ids


def test_step_kinds_get_their_own_labelled_charts(three):
    from roost.ui.charts import runs_charts

    p = runs_charts([three["gbm"], three["net"], three["mine"]])
    val = {c["kind"]: c for c in p["charts"] if c["key"] == "val_loss"}
    assert set(val) == {"boosting_round", "epoch", "step"}
    assert {k: c["x_label"] for k, c in val.items()} == {
        "boosting_round": "boosting round",
        "epoch": "epoch",
        "step": "step",  # steps 0-99 with nothing saying what they count: never "epoch"
    }
    assert [s["id"] for s in val["boosting_round"]["series"]] == [three["gbm"]]
    assert val["boosting_round"]["series"][0]["steps"] == list(range(10, 140, 10))
    assert [s["id"] for s in val["epoch"]["series"]] == [three["net"]]
    assert all(c["split"] for c in val.values())
    (batch,) = [c for c in p["charts"] if c["key"] == "train_loss_step"]
    assert batch["kind"] == "batch" and batch["x_label"] == "mini-batch step" and not batch["split"]


def test_one_point_metrics_are_values_not_dots(three):
    from roost.ui.charts import runs_charts

    p = runs_charts([three["gbm"], three["net"]])
    assert "test_auc" not in {c["key"] for c in p["charts"]}
    (fin,) = [f for f in p["finals"] if f["key"] == "test_auc"]
    assert [(v["id"], v["value"]) for v in fin["values"]] == [(three["gbm"], 0.81), (three["net"], 0.79)]


def test_recorded_step_kind_and_times(three):
    from roost.ui.charts import runs_charts

    with roost.start_run(experiment="k", tags={"roost.step_kind": "boosting_round"}) as r:
        r.log_metric("val_loss", 0.5, step=1)
        r.log_metric("val_loss", 0.4, step=2)
        rid = r.id
    (c,) = runs_charts([rid])["charts"]
    assert c["kind"] == "boosting_round"
    (s,) = c["series"]
    run = roost.get_run(rid)
    assert len(s["times"]) == 2 and s["start"] == pytest.approx(run["start_time"].timestamp() * 1000, abs=1)
    assert all(s["start"] - 1000 <= t <= run["end_time"].timestamp() * 1000 + 1000 for t in s["times"])
