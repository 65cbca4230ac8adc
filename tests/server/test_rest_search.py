"""Search through the server as the Python client sends it: `limit=None` lists every run (not the server's default
page), and the filter's notices come back with the runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from roost.registry import accounts
from roost.registry.rest import RestStore
from roost.registry.sqlstore import sql_store


@pytest.fixture
def rest(server: Any) -> RestStore:
    """A RestStore whose HTTP client is a TestClient of the in-process server, as an admin."""
    from starlette.testclient import TestClient

    _, app, store = server
    accounts.create_user(store, "boss", None, admin=True)
    token = accounts.create_token(store, "boss").token
    rs = RestStore("http://127.0.0.1", token=token)
    rs._client.close()
    rs._client = TestClient(
        app,
        base_url="http://127.0.0.1/api/v1",
        client=("127.0.0.1", 40000),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    return rs


def _seed(store: Any, n: int) -> set[str]:
    eid = store.get_or_create_experiment("many")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = []
    for i in range(n):
        rid = uuid.uuid4().hex
        start = t0 + timedelta(seconds=i)
        runs.append({"id": rid, "experiment_id": eid, "name": f"r{i}", "status": "FINISHED", "start_time": start,
                     "end_time": start, "heartbeat_at": start, "user": "t", "source": "t",
                     "artifact_uri": f"file:///nowhere/{rid}"})  # fmt: skip
    store.bulk_insert(runs, [(r["id"], "lr", "0.01" if i % 3 else "0.1") for i, r in enumerate(runs)])
    return {r["id"] for r in runs}


def test_limit_none_lists_every_run_past_the_default_page(server: Any, rest: RestStore) -> None:
    ids = _seed(server[2], 1_205)
    assert {r["run_id"] for r in rest.search_runs(limit=None)} == ids
    assert len(rest.search_runs()) == 1_000  # the default page is still 1,000 (an absent limit)
    assert len(rest.search_runs(limit=7)) == 7


def test_search_then_its_notices_is_one_request(server: Any, rest: RestStore) -> None:
    _seed(server[2], 30)
    sent: list[str] = []
    rest._client.event_hooks["request"] = [lambda req: sent.append(req.url.path)]
    flt = "params.lr = '0.1' and metrics.nope > 1 and params.nada = 'x'"
    want = sql_store(server[0].store_url).filter_notices(flt, "many")  # the SQL store: the reference
    assert len(want) == 2
    got = rest.search_runs(flt, "many")
    assert got == [] and rest.filter_notices(flt, "many") == want
    assert sent == ["/api/v1/runs/search"]
    assert rest.filter_notices(flt, "many") == want  # asked again (not after a search): its own request
    assert sent == ["/api/v1/runs/search", "/api/v1/runs/filter-notices"]


def test_a_search_is_not_a_write_for_the_audit_log_unless_refused(server: Any, rest: RestStore) -> None:
    from roost.errors import NotFoundError
    from roost.registry import audit_log

    _seed(server[2], 3)
    rest.search_runs("params.lr = '0.1'", "many")
    rest.runs_by_ids(["0" * 32])
    with pytest.raises(NotFoundError):
        rest.search_runs(None, "no-such-experiment")
    rest.put_object("thing", "a", {"x": 1})  # a write: recorded
    rows = [(e.action, e.resource, e.status) for e in reversed(audit_log.query(server[2]))]
    assert rows == [("POST", "/api/v1/runs/search", 404), ("PUT", "/api/v1/objects/thing/a", 200)]
