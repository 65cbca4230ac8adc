"""A filter naming a metric/param/tag that no run has says so, with the closest names (#23)."""

from __future__ import annotations

import logging
from typing import Any

import pytest


def _run(experiment: str, metrics: dict[str, float], params: dict[str, Any], tags: dict[str, str]) -> str:
    import roost

    with roost.start_run(experiment=experiment, params=params, tags=tags) as run:
        for k, v in metrics.items():
            run.log_metric(k, v)
    return run.id


def test_unknown_metric_names_the_closest_keys(ws: Any) -> None:
    from roost.registry import api

    _run("a", {"test_roc_auc": 0.8, "val_roc_auc": 0.7, "loss": 0.1}, {"lr": 0.1}, {"team": "ads"})
    notes = api.filter_notices("metrics.roc_auc > 0.7 AND params.lr = 0.1")
    assert len(notes) == 1
    assert "metrics.roc_auc" in notes[0]
    assert "metrics.test_roc_auc" in notes[0] and "metrics.val_roc_auc" in notes[0]
    assert api.filter_notices("metrics.test_roc_auc > 0.7 AND params.lr = 0.1 AND tags.team = 'ads'") == []


@pytest.mark.parametrize(
    ("flt", "want"),
    [
        ("params.learning_rate < 1", "known params: lr"),
        ("tags.teams = 'x'", "tags.team"),
        ("NOT params.lrr IN (1)", "lr"),
    ],
)
def test_unknown_param_and_tag(ws: Any, flt: str, want: str) -> None:
    from roost.registry import api

    _run("a", {"m": 1.0}, {"lr": 0.1}, {"team": "ads"})
    notes = api.filter_notices(flt)
    assert len(notes) == 1 and want in notes[0], notes


def test_keys_are_looked_up_in_the_searched_experiments_only(ws: Any) -> None:
    from roost.registry import api

    _run("a", {"auc": 0.9}, {}, {})
    _run("b", {"loss": 0.1}, {}, {})
    assert api.filter_notices("metrics.auc > 0", experiment="a") == []
    notes = api.filter_notices("metrics.auc > 0", experiment="b")
    assert len(notes) == 1 and "metrics.auc" in notes[0]


def test_search_runs_logs_the_notice(ws: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The Python API (roost.search_runs) warns through logging; the results are unchanged."""
    import roost

    _run("a", {"test_roc_auc": 0.8}, {}, {})
    with caplog.at_level(logging.WARNING, logger="roost.registry.api"):
        assert roost.search_runs("metrics.roc_auc > 0.7") == []
    assert any("metrics.test_roc_auc" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="roost.registry.api"):
        assert len(roost.search_runs("metrics.test_roc_auc > 0.7")) == 1
    assert not caplog.records


def test_filter_keys_ignores_strings_and_attributes() -> None:
    from roost.registry.query import filter_keys

    got = filter_keys("params.lr = 'metrics.fake' AND status = 'FINISHED' OR tags.`a b` = 'x' AND metric.m > 1")
    assert got == [("param", "lr"), ("tag", "a b"), ("metric", "m")]
