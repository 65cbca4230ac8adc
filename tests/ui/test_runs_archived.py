"""The runs page's "include archived" switch (and ?archived=1 on /api/runs): archived runs listed and marked, counted;
deleted runs never listed."""

from __future__ import annotations

import roost
from roost.registry import api


def test_include_archived_switch_lists_archived_runs_and_never_deleted_ones(ws):
    from starlette.testclient import TestClient

    from roost.ui import create_app

    ids = []
    for i in range(5):
        with roost.start_run(experiment="arch", name=f"run{i}") as r:
            ids.append(r.id)
    api.archive_runs(run_ids=ids[:2])
    api.delete_runs(run_ids=ids[2:3])
    client = TestClient(create_app())

    page = client.get("/runs").text
    assert "1–2 of 2 runs" in page and 'id="archived-switch"' in page and "run0" not in page
    page = client.get("/runs?archived=1").text
    assert "1–4 of 4 runs" in page and "run2" not in page
    assert page.count('class="stage archived"') == 2 and "run0" in page and "run1" in page
    assert 'id="archived-switch" checked' in page

    body = client.get("/api/runs").json()
    assert body["total"] == 2 and body["total_exact"] is True
    assert {r["run_id"] for r in body["runs"]} == set(ids[3:])
    body = client.get("/api/runs", params={"archived": "1"}).json()
    assert body["total"] == 4
    assert {r["run_id"]: r["lifecycle_stage"] for r in body["runs"]} == {
        ids[0]: "archived",
        ids[1]: "archived",
        ids[3]: "active",
        ids[4]: "active",
    }
    filtered = client.get("/api/runs", params={"archived": "true", "q": "name LIKE 'run%'"}).json()
    assert filtered["total"] == 4
