"""The audit middleware and log: one row per write and per refused request, the actor, the client address (X-
Forwarded-For only from trusted proxies), never a secret, written after the response, a failing insert harmless."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery"


@pytest.fixture
def token(server: Any) -> str:
    from roost.registry import accounts

    accounts.create_user(server[2], "alice", PASSWORD)
    return accounts.create_token(server[2], "alice").token


def test_writes_and_refusals_recorded_reads_not(server: Any, client: Any, token: str) -> None:
    from roost.registry import audit_log

    auth = {"authorization": f"Bearer {token}"}
    assert client.get("/api/v1/whoami", headers=auth).status_code == 200  # a read: no row
    assert client.post("/api/v1/whoami", headers=auth, json={}).status_code == 200  # a write
    assert client.get("/api/v1/whoami").status_code == 401  # refused
    assert client.get("/api/v1/nothing-here", headers=auth).status_code == 404  # refused too
    rows = audit_log.query(server[2])
    got = [(e.actor, e.action, e.resource, e.status, e.client) for e in reversed(rows)]
    assert got == [
        ("alice", "POST", "/api/v1/whoami", 200, "127.0.0.1"),
        (None, "GET", "/api/v1/whoami", 401, "127.0.0.1"),
        ("alice", "GET", "/api/v1/nothing-here", 404, "127.0.0.1"),
    ]
    assert rows[-1].detail == {"method": "POST", "token": token.split("_")[1], "via": "token"}
    assert [e.status for e in audit_log.query(server[2], actor="-")] == [401]
    assert len(audit_log.query(server[2], actor="alice", limit=1)) == 1


def test_no_secret_in_the_audit_log_or_the_database(server: Any, client: Any, token: str) -> None:
    secret = token.split("_", 2)[2]
    client.post("/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, json={"password": "in-a-body-1"})
    client.post("/api/v1/whoami?token=query-secret-2", headers={"authorization": f"Bearer {token}x"}, json={})
    basic = base64.b64encode(b"alice:basic-secret-3").decode()
    client.post("/api/v1/whoami", headers={"authorization": f"Basic {basic}"}, json={})
    page = client.get("/login").text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"name": "alice", "password": "form-secret-4", "csrf_token": csrf})
    client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf})
    store = server[2]
    store.engine.dispose()
    db = Path(store.engine.url.database)
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    for s in (secret, "in-a-body-1", "query-secret-2", "basic-secret-3", basic, "form-secret-4", PASSWORD):
        assert s.encode() not in raw, s
    from roost.registry import audit_log

    assert len(audit_log.query(store)) == 5


def test_client_address_and_forwarded_for() -> None:
    from roost.server.audit import client_address

    def scope(peer: str, xff: str | None = None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", xff.encode())] if xff else []
        return {"client": (peer, 1234), "headers": headers}

    trusted = ["10.0.0.0/8", "192.168.1.1"]
    assert client_address(scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"  # not a proxy: header ignored
    assert client_address(scope("203.0.113.9", "1.2.3.4"), []) == "203.0.113.9"
    assert client_address(scope("10.1.2.3", "1.2.3.4"), trusted) == "1.2.3.4"
    # a client-written first hop is skipped: the nearest hop not a trusted proxy is the client
    assert client_address(scope("10.1.2.3", "6.6.6.6, 1.2.3.4, 192.168.1.1"), trusted) == "1.2.3.4"
    assert client_address(scope("10.1.2.3", "10.9.9.9"), trusted) == "10.9.9.9"
    assert client_address(scope("10.1.2.3"), trusted) == "10.1.2.3"
    assert client_address({"headers": []}, trusted) is None


async def _run(app: Any, scope: dict[str, Any], events: list[str]) -> None:

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        events.append(msg["type"])

    await app(scope, receive, send)


def _scope(method: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/x", "headers": [], "client": ("127.0.0.1", 1)}


async def _tiny(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_row_written_after_the_response(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import anyio

    from roost.registry import audit_log
    from roost.server.audit import AuditMiddleware
    from roost.server.settings import ServerSettings

    order: list[str] = []
    monkeypatch.setattr(audit_log, "submit", lambda *a, **k: order.append(f"insert {k['status']}"))
    settings = ServerSettings(store_url=f"sqlite:///{tmp_path}/s.db", artifact_root=f"file://{tmp_path}/a")
    mw = AuditMiddleware(_tiny, settings)

    anyio.run(_run, mw, _scope("POST"), order)  # the response's events and the insert go to one list, in order
    assert order == ["http.response.start", "http.response.body", "insert 201"]
    order.clear()
    anyio.run(_run, mw, _scope("GET"), order)
    assert order == ["http.response.start", "http.response.body"]  # a successful read: no row


def test_failing_insert_is_logged_and_the_answer_stands(
    server: Any, client: Any, token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from roost.registry import audit_log

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(audit_log, "submit", broken)
    with caplog.at_level(logging.ERROR, logger="roost.server.audit"):
        r = client.post("/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, json={})
    assert r.status_code == 200 and r.json()["name"] == "alice"
    assert "audit log insert failed for POST /api/v1/whoami -> 200" in caplog.text


def test_audit_cli_filters(server: Any, client: Any, token: str) -> None:
    import json

    from typer.testing import CliRunner

    from roost.cli.main import build_app

    client.post("/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, json={})
    client.get("/api/v1/whoami")
    run = CliRunner().invoke
    res = run(build_app(), ["audit", "--json", "--actor", "alice", "--store", server[0].store_url])
    assert res.exit_code == 0, res.output
    assert [(e["actor"], e["status"]) for e in json.loads(res.stdout)] == [("alice", 200)]
    res = run(build_app(), ["audit", "--json", "--refused", "--since", "1h", "--store", server[0].store_url])
    assert [(e["actor"], e["status"]) for e in json.loads(res.stdout)] == [(None, 401)]
    res = run(build_app(), ["audit", "--json", "--since", "2099-01-01", "--store", server[0].store_url])
    assert json.loads(res.stdout) == []


def test_audit_page_for_admins_only(server: Any, client: Any, token: str) -> None:
    from starlette.testclient import TestClient

    from roost.registry import accounts

    client.post("/api/v1/whoami", headers={"authorization": f"Bearer {token}"}, json={})
    assert client.get("/admin/audit").status_code == 303  # anonymous: to the login page
    r = client.get("/admin/audit", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "not an admin" in r.json()["error"]["message"]
    accounts.set_admin(server[2], "alice")
    r = client.get("/admin/audit?actor=alice&since=1h", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and "/api/v1/whoami" in r.text and "<td>POST</td>" in r.text
    r = client.get("/admin/audit?since=soon", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 400 and "neither a duration nor a date" in r.text
    # the UI's header shows who is signed in, a sign-out link and, for admins, the audit log
    browser = TestClient(client.app, base_url="http://127.0.0.1", follow_redirects=False)
    csrf = browser.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    assert browser.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf}).status_code == 303
    page = browser.get("/experiments")
    assert page.status_code == 200 and "Sign out (alice)" in page.text and 'href="/admin/audit"' in page.text
    accounts.set_admin(server[2], "alice", False)
    page = browser.get("/experiments")
    assert "Sign out (alice)" in page.text and 'href="/admin/audit"' not in page.text


def test_batched_writer_writes_every_row_once_and_survives_a_failing_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    from roost.registry import audit_log, audit_writer
    from roost.registry.store import open_store

    store = open_store(f"sqlite:///{tmp_path}/w.db")

    def burst(k: int) -> None:
        for i in range(250):
            audit_log.submit(store, action="POST", status=200 + k, actor=f"t{k}", resource=f"/r/{i}")

    threads = [threading.Thread(target=burst, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = audit_log.query(store, limit=10_000)  # flushes this process's queue first
    assert len(rows) == 2000
    assert {(r.actor, r.resource) for r in rows} == {(f"t{k}", f"/r/{i}") for k in range(8) for i in range(250)}

    w = audit_writer.writer(store)
    real_write = store.write
    broken = [True]

    def write_once_broken(durable: bool = True) -> Any:
        if broken:
            broken.pop()
            raise RuntimeError("database is gone")
        return real_write(durable)

    monkeypatch.setattr(store, "write", write_once_broken)
    with caplog.at_level(logging.ERROR, logger="roost.registry.audit_writer"):
        audit_log.submit(store, action="POST", status=500, resource="/lost")
        assert w.flush(10)
        audit_log.submit(store, action="POST", status=201, resource="/kept")
        assert w.flush(10)
    assert "audit log insert failed: 1 row(s) lost (first: POST /lost -> 500)" in caplog.text
    resources = {r.resource for r in audit_log.query(store, limit=10_000)}
    assert "/kept" in resources and "/lost" not in resources and len(resources) == 251
