"""UI runs table: headline metrics first, varying params next, nested runs under their parent, readable counts."""

from __future__ import annotations

import re

import pytest

import roost


@pytest.fixture
def nested(ws):
    """A tune-like parent with three trials, and two plain training runs, all binary-task runs."""
    out = {}
    with roost.start_run(experiment="t", name="plain-a", params={"lr": 0.1, "seed": 1}) as r:
        r.set_tag("roost.task", "binary")
        r.log_metrics({"loss": 0.3, "test_roc_auc": 0.70, "n_rows": 18830.0})
        out["a"] = r.id
    with roost.start_run(experiment="t", name="study", params={"lr": 0.2, "seed": 1}) as parent:
        parent.set_tag("roost.task", "binary")
        parent.log_metrics({"test_roc_auc": 0.80, "n_rows": 18830.0, "loss": 0.2})
        out["p"] = parent.id
        out["kids"] = []
        for i in range(3):
            with roost.start_run(
                experiment="t", name=f"trial-{i}", parent_run_id=parent.id, params={"lr": i / 10, "seed": 1}
            ) as c:
                c.set_tag("roost.task", "binary")
                c.log_metrics({"test_roc_auc": 0.5 + i / 10, "n_rows": 18830.0, "loss": 0.1})
                out["kids"].append(c.id)
    return out


def _rows(html: str) -> list[tuple[str, str | None]]:
    """(run id, parent id or None) of each body row, in order."""
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return [
        (m.group(1), (re.search(r'data-parent="([^"]+)"', m.group(0)) or [None, None])[1])
        for m in re.finditer(r'<tr data-run-id="([^"]+)"[^>]*>', body)
    ]


def test_children_are_listed_under_their_parent_and_not_paged_as_roots(nested):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app()) as c:
        r = c.get("/runs", params={"per_page": "1", "order": "start_time DESC"})
    assert r.status_code == 200
    # page 1 of 2 holds the newest top-level run (the study) and brings its three trials along, right after it
    assert _rows(r.text) == [(nested["p"], None)] + [(k, nested["p"]) for k in nested["kids"]]
    assert "1–1 of 2 runs" in r.text and "+ 3 nested" in r.text
    assert re.search(r'<button type="button" class="expand" data-run="' + nested["p"] + '"[^>]*>▸ 3</button>', r.text)
    assert all(
        f'data-run-id="{k}" class="child" data-parent="{nested["p"]}" data-depth="1" hidden' in r.text
        for k in nested["kids"]
    )


def test_headline_metric_first_constant_columns_hidden_counts_readable(nested):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app()) as c:
        html = c.get("/runs").text
    head = html.split("<thead>")[1].split("</thead>")[0]
    shown = re.findall(r'<th class="sortable num \w+[^"]*" data-col="([^"]+)"[^>]*?(?<! hidden)>', head)
    assert shown == ["metrics.test_roc_auc", "params.lr", "metrics.loss"]
    # constant over all listed runs (n_rows, seed): offered in the picker, hidden in the table
    for f in ("metrics.n_rows", "params.seed"):
        assert re.search(rf'data-col="{re.escape(f)}"[^>]*hidden', head)
        assert f'<input type="checkbox" data-col="{f}">' in html
    assert "18,830" in html and "1.883e+04" not in html and "18830" not in html


def test_a_filter_lists_matching_children_flat_when_their_parent_does_not_match(nested):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    with TestClient(create_app()) as c:
        html = c.get("/runs", params={"q": "name LIKE 'trial%'"}).text
    assert sorted(rid for rid, _ in _rows(html)) == sorted(nested["kids"])
    assert all(parent is None for _, parent in _rows(html))
