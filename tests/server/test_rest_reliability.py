"""Idempotent batches, a server restart mid-run, and hostile requests to the API and the artifact proxy."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

import roost
from roost.registry.sqlstore import sql_store


@pytest.fixture
def server(live_server):
    """This module's tests run against the real 2-worker server (conftest.live_server)."""
    return live_server


def _points(store_url: str, run_id: str, key: str = "m") -> list[int]:
    """Steps of every stored point of `key` (read from the server's database directly)."""
    return sorted(p["step"] for p in sql_store(store_url).metric_history(run_id, key))


def test_one_key_twice_writes_the_points_once(as_client, server) -> None:
    with roost.start_run("idem") as run:
        pass
    body = {"metrics": [["m", float(i), i, time.time()] for i in range(50)], "params": {}, "tags": {}}
    key = uuid.uuid4().hex
    url = f"{server.url}/api/v1/runs/{run.id}/log-batch"
    for _ in range(2):
        r = httpx.post(url, json=body, headers={**server.headers(), "Idempotency-Key": key})
        assert r.status_code == 200, r.text
    assert _points(server.store_url, run.id) == list(range(50))
    r = httpx.post(url, json=body, headers={**server.headers(), "Idempotency-Key": uuid.uuid4().hex})
    assert _points(server.store_url, run.id) == sorted(list(range(50)) * 2)  # another key: applied again


def test_server_restart_mid_run_loses_and_duplicates_nothing(as_client, server, monkeypatch, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, "roost.registry.rest")
    monkeypatch.setenv("ROOST_SERVER_RETRY_S", "60")
    n, logged = 3000, threading.Event()
    with roost.start_run("restart") as run:

        def bounce() -> None:
            logged.wait(30)
            server.kill()  # SIGKILL: batches in flight are cut mid-request
            time.sleep(1.0)
            server.start()

        t = threading.Thread(target=bounce)
        t.start()
        for i in range(n):
            roost.log_metric("m", float(i), step=i)
            if i == n // 3:
                logged.set()
            time.sleep(0.001)
        t.join()
    assert any("retrying" in r.getMessage() for r in caplog.records)  # the outage was met by the client
    assert _points(server.store_url, run.id) == list(range(n))
    assert sql_store(server.store_url).get_run(run.id)["status"] == "FINISHED"


@pytest.mark.parametrize(
    "path",
    [
        "../../../escape.txt",
        "a/../../escape.txt",
        "%2e%2e/escape.txt",
        "a%5c..%5c..%5cescape.txt",
        "x%00.txt",
        "/abs.txt",
    ],  # fmt: skip
)
def test_traversal_refused_and_nothing_written(as_client, server, path: str) -> None:
    with roost.start_run("hostile") as run:
        pass
    before = sorted(p for p in server.root.rglob("*") if p.is_file())
    url = f"{server.url}/api/v1/artifacts/runs/{run.id}/{path}"
    r = httpx.put(url, content=b"evil", headers={**server.headers(), "Content-Type": "application/octet-stream"})
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    after = sorted(p for p in server.root.rglob("*") if p.is_file() and p.name != "server.log")
    assert [p for p in after if p not in before and not p.name.startswith("server.db")] == []
    assert not (server.root / "escape.txt").exists() and not (server.root.parent / "escape.txt").exists()


def test_oversized_upload_is_413_and_nothing_written(as_client, server) -> None:
    with roost.start_run("big") as run:
        pass
    url = f"{server.url}/api/v1/artifacts/runs/{run.id}/big.bin"
    r = httpx.put(url, content=b"x" * (1024 * 1024 + 1), headers={**server.headers(),
                  "Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 413, r.text

    def chunks():  # no Content-Length: the limit holds on the streamed body too
        for _ in range(20):
            yield b"y" * 100_000

    r = httpx.put(url, content=chunks(), headers={**server.headers(), "Content-Type": "application/octet-stream"})
    assert r.status_code == 413, r.text
    assert not list((server.root / "artifacts").rglob("big.bin*"))


def test_malformed_bodies_are_400_naming_the_field(as_client, server) -> None:
    with roost.start_run("bad") as run:
        pass
    url = f"{server.url}/api/v1/runs/{run.id}/log-batch"
    r = httpx.post(url, json={"metrics": [["m", "x", 1, 0.0]]}, headers=server.headers())
    assert r.status_code == 400 and "metrics[0]" in r.json()["error"]["message"]
    r = httpx.post(url, json={"metrics": "nope"}, headers=server.headers())
    assert r.status_code == 400 and "'metrics'" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/api/v1/runs/search", json={"limit": "ten"}, headers=server.headers())
    assert r.status_code == 400 and "'limit'" in r.json()["error"]["message"]
    r = httpx.get(f"{server.url}/api/v1/runs/{'0' * 32}", headers=server.headers())
    assert r.status_code == 404
    assert _points(server.store_url, run.id) == []


def test_credentials_file_mode_is_enforced(tmp_path: Path, monkeypatch) -> None:
    from roost.errors import RoostError
    from roost.registry import credentials

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ROOST_SERVER", raising=False)
    p = credentials.save("http://127.0.0.1:1", "roost_a_b")
    assert p == tmp_path / "roost" / "credentials.json" and p.stat().st_mode & 0o777 == 0o600
    assert credentials.server() == ("http://127.0.0.1:1", "roost_a_b")
    p.chmod(0o644)
    with pytest.raises(RoostError, match="chmod 600"):
        credentials.server()
