"""The runs page says when a filter names a metric/param/tag no run has, with the closest names (#23)."""

from __future__ import annotations

from typing import Any


def test_unknown_metric_gets_a_notice_with_the_closest_names(client: Any) -> None:
    r = client.get("/runs", params={"q": "metrics.aucc > 0.5"})
    assert r.status_code == 200
    assert "no run in the searched experiments has metrics.aucc" in r.text
    assert "metrics.auc" in r.text.split("metrics.aucc", 2)[-1]


def test_notice_is_scoped_to_the_chosen_experiment_and_absent_for_known_keys(client: Any) -> None:
    r = client.get("/runs", params={"q": "params.model = 'mlp'", "experiment": "other"})
    assert "no run in the searched experiments has params.model" in r.text
    r = client.get("/runs", params={"q": "params.model = 'mlp' AND metrics.auc > 0.1"})
    assert "no run in the searched experiments" not in r.text
