"""Chart data: per-epoch curves only, the restored epoch marked not appended, honest y ranges, dates as dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import roost


@pytest.fixture
def trained(ws):
    """A training-like run: val_roc_auc per epoch, the restored best re-logged at the last epoch, test_* once."""
    with roost.start_run(experiment="c", name="mlp") as r:
        for epoch, v in enumerate([0.70, 0.78, 0.75]):
            r.log_metrics({"val_roc_auc": v, "train_loss": 1.0 / (epoch + 1)}, step=epoch)
        r.log_metrics({"val_roc_auc": 0.78}, step=2)  # restored best (epoch 1), same step as the last epoch
        r.log_metrics({"test_roc_auc": 0.77, "test_pr_auc": 0.4})
        r.set_tag("roost.best_epoch", "1")
        return r.id


def test_single_value_metrics_go_to_the_table_not_to_charts(trained):
    from roost.ui.charts import runs_charts

    p = runs_charts([trained])
    assert [c["key"] for c in p["charts"]] == ["train_loss", "val_roc_auc"]
    assert p["final"] == ["test_pr_auc", "test_roc_auc"]
    assert all(len(s["steps"]) >= 2 for c in p["charts"] for s in c["series"])


def test_restored_best_is_a_marker_not_an_extra_point(trained):
    from roost.ui.charts import runs_charts

    val = next(c for c in runs_charts([trained])["charts"] if c["key"] == "val_roc_auc")
    (s,) = val["series"]
    assert s["steps"] == [0, 1, 2] and s["values"] == [0.70, 0.78, 0.75]  # the epochs as trained
    assert [(m["id"], m["step"]) for m in val["markers"]] == [(trained, 1)]


def test_compare_axis_is_not_blown_up_for_a_tiny_difference(ws):
    from roost.ui.charts import runs_charts

    ids = []
    for base in (0.8000, 0.8001):
        with roost.start_run(experiment="c") as r:
            for i in range(3):
                r.log_metric("val_roc_auc", base, step=i)
            ids.append(r.id)
    (c,) = runs_charts(ids)["charts"]
    lo, hi = c["y_range"]
    assert lo <= 0.8 and hi >= 0.8001
    assert (0.8001 - 0.8000) / (hi - lo) < 0.01  # the 1e-4 gap is under 1% of the axis, not all of it
    assert hi - lo < 0.1  # and the axis is not absurdly wide either


def test_unix_time_steps_are_a_time_axis_in_milliseconds(ws):
    from roost.ui.charts import runs_charts

    when = [datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
    with roost.start_run(experiment="mon") as r:
        for i, t in enumerate(when):
            r.log_metric("drift", 0.1 * i, step=int(t.timestamp()))
        rid = r.id
    (c,) = runs_charts([rid])["charts"]
    assert c["x_type"] == "time" and c["markers"] == []
    got = [datetime.fromtimestamp(ms / 1000, UTC) for ms in c["series"][0]["steps"]]
    assert got == when


def test_charts_api(client, populated):
    r = client.get("/api/charts", params={"runs": f"{populated['a'][:8]},{populated['b']}"})
    assert r.status_code == 200
    body = r.json()
    assert [c["key"] for c in body["charts"]] == ["auc", "loss"]
    assert [s["id"] for s in body["charts"][0]["series"]] == [populated["a"], populated["b"]]
    assert client.get("/api/charts").status_code == 400
