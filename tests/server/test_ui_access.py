"""The web UI hosted by the team server reads every experiment and model unfiltered, so only accounts that may read
all of them get it: admins, or anyone under default role read without an explicit 'none' grant. Others get 403 on
every UI page and UI JSON endpoint (before: any signed-in account read every run through the UI)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import bearer, new_account

UI_PATHS = ["/", "/runs", "/models", "/api/runs", "/api/experiments", "/api/models"]


def _app(ws: Any, tmp_path: Any, default_role: str) -> tuple[Any, Any]:
    from starlette.testclient import TestClient

    from roost.server.app import create_server_app
    from roost.server.settings import ServerSettings

    settings = ServerSettings(
        store_url=ws.store_url, artifact_root=f"file://{tmp_path}/artifacts", default_role=default_role
    )
    app = create_server_app(settings)
    client = TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 40000), follow_redirects=False)
    return client, settings.store()


@pytest.mark.parametrize("path", UI_PATHS)
def test_default_none_keeps_the_ui_for_admins(ws: Any, tmp_path: Any, path: str) -> None:
    client, store = _app(ws, tmp_path, "none")
    admin, user = new_account(store, "root-admin", admin=True), new_account(store, "dana")
    assert client.get(path, headers=bearer(admin)).status_code == 200
    r = client.get(path, headers=bearer(user))
    assert r.status_code == 403, r.text
    assert "web UI" in r.json()["error"]["message"]
    assert client.get("/api/v1/experiments", headers=bearer(user)).status_code == 200  # the REST API still answers


def test_default_read_gives_the_ui_unless_a_none_grant_shuts_one_out(ws: Any, tmp_path: Any) -> None:
    from roost.registry import grants

    client, store = _app(ws, tmp_path, "read")
    eve, fred = new_account(store, "eve"), new_account(store, "fred")
    store.get_or_create_experiment("secret")
    grants.create_group(store, "contractors")
    grants.add_member(store, "contractors", "fred")
    grants.grant(store, "group:contractors", "experiment", "secret", "none")
    assert client.get("/api/runs", headers=bearer(eve)).status_code == 200
    assert client.get("/api/runs", headers=bearer(fred)).status_code == 403  # via his group's none grant
    grants.revoke(store, "group:contractors", "experiment", "secret")
    assert client.get("/api/runs", headers=bearer(fred)).status_code == 200  # seen on the next request
