"""The team server on PostgreSQL: statements per request as PostgreSQL itself logs them (log_statement=all on the
test's database), and the per-process auth cache that saves most of them — dropped at once, in every worker, when a
token is revoked, a grant or membership taken back, an account disabled, a token expires, or the listener that
clears it is cut; pooled connections whose backend was terminated are replaced without a failed request."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import new_pg_database

from .conftest import ServerProc, bearer

_STATEMENT = re.compile(r"(?:\[(\d+)\] |^(\d+)\|)LOG:  (?:statement|execute [^:]*): (.*)")
LISTENER = "roost-auth-listener"  # application_name of the cache's listener (roost.registry.auth_cache)
N = 12  # requests per check, each on a new connection (uvicorn's workers share the port: both get some)
EIDS: dict[str, int] = {}  # server URL -> id of its experiment 'e'


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_plain(url), autocommit=True) as c:
        cur = c.execute(query, args) if args else c.execute(query)
        return list(cur.fetchall()) if cur.description is not None else []


@pytest.fixture(scope="module")
def pg_server(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A 2-worker server on a fresh PostgreSQL database whose statements PostgreSQL logs; default role none."""
    url = new_pg_database(postgres_server)
    db = url.rsplit("/", 1)[1]
    _sql(url, f"ALTER DATABASE \"{db}\" SET log_statement = 'all'")
    srv = ServerProc(tmp_path_factory.mktemp("pgsrv"), workers=2, store_url=url, default_role="none")
    srv.start()
    c = httpx.Client(base_url=srv.url + "/api/v1", headers=srv.headers(), timeout=30)
    EIDS[srv.url] = c.post("/experiments", json={"name": "e"}).json()["id"]
    yield srv
    srv.stop()


def _new_run(srv: ServerProc) -> str:
    rid = uuid.uuid4().hex
    body = {"row": {"id": rid, "experiment_id": EIDS[srv.url]}}
    assert httpx.post(srv.url + "/api/v1/runs", json=body, headers=srv.headers()).status_code == 200
    return rid


def _statuses(srv: ServerProc, token: str, method: str, path: str, body: Any = None) -> list[int]:
    """The status of N requests, each on a connection of its own (so both workers answer some)."""
    out = []
    for _ in range(N):
        with httpx.Client(base_url=srv.url + "/api/v1", timeout=30) as c:
            out.append(c.request(method, path, json=body, headers=bearer(token)).status_code)
    return out


def _log_batch(i: int = 0) -> dict[str, Any]:
    return {"metrics": [["m", 0.5, i, 1.0]]}


# -- statements per request --------------------------------------------------------------------------------
def _statements(url: str, log: Path, offset: int) -> list[list[str]]:
    """The transactions (lists of statements; an autocommit statement alone) the server's backends sent after
    `offset` of the log, the audit log's batches left out (written in the background, one per many requests)."""
    db = url.rsplit("/", 1)[1]
    pids = {
        str(p)
        for (p,) in _sql(
            url,
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name <> %s"
            " AND pid <> pg_backend_pid()",
            db,
            LISTENER,
        )
    }
    per_pid: dict[str, list[list[str]]] = {}
    open_tx: dict[str, list[str]] = {}
    for line in log.read_bytes()[offset:].decode("utf-8", "replace").splitlines():
        m = _STATEMENT.search(line)
        if m is None or (m.group(1) or m.group(2)) not in pids:
            continue
        pid, stmt = m.group(1) or m.group(2), m.group(3).strip()
        if stmt.upper().startswith("BEGIN"):
            open_tx[pid] = [stmt]
        elif pid in open_tx:
            open_tx[pid].append(stmt)
            if stmt.upper() in ("COMMIT", "ROLLBACK"):
                per_pid.setdefault(pid, []).append(open_tx.pop(pid))
        else:
            per_pid.setdefault(pid, []).append([stmt])
    return [tx for txs in per_pid.values() for tx in txs if not any("audit_events" in s for s in tx)]


def _measure(srv: ServerProc, log: Path, token: str, requests: list[tuple[str, str, Any]]) -> list[str]:
    """The statements of the last of `requests`, sent on one connection (one worker) after the others warmed it."""
    with httpx.Client(base_url=srv.url + "/api/v1", timeout=30, headers=bearer(token)) as c:
        for method, path, body in requests[:-1]:
            assert c.request(method, path, json=body).status_code == 200
        offset = log.stat().st_size
        method, path, body = requests[-1]
        r = c.request(method, path, json=body)
        assert r.status_code == 200, r.text
    time.sleep(0.1)  # the log is written by the backend after it answered
    return [s for tx in _statements(srv.store_url, log, offset) for s in tx]


def _create(srv: ServerProc, params: dict[str, Any]) -> tuple[str, str, Any]:
    return "POST", "/runs", {"row": {"id": uuid.uuid4().hex, "experiment_id": EIDS[srv.url]}, "params": params}


def test_statements_per_request(pg_server: ServerProc) -> None:
    srv = pg_server
    data_dir = _sql(srv.store_url, "SHOW data_directory")[0][0]
    log = Path(data_dir) / "log.txt"  # where the fixture's pg_ctl -l writes
    from roost.registry import grants

    bob = srv.account("bob_rt")
    grants.grant(srv_store(srv), "bob_rt", "experiment", "e", "edit")
    params = {"a": 1, "b": "x", "c": 0.5}
    for who, token in (("admin", srv.token), ("bob", bob)):
        warm = _create(srv, params)
        rid = warm[2]["row"]["id"]
        batch_req = ("POST", f"/runs/{rid}/log-batch", _log_batch(1))
        create = _measure(srv, log, token, [warm, batch_req, _create(srv, params)])
        batch = _measure(srv, log, token, [batch_req, ("POST", f"/runs/{rid}/log-batch", _log_batch(2))])
        # before (2026-12-06): create run 12 statements (ping + BEGIN + token SELECT + ROLLBACK, the write's ping,
        # BEGIN, SET LOCAL, INSERT run, 3 INSERT params, COMMIT); log-batch 12 (bob: 16, with the grant's read)
        assert not [s for s in create + batch if s == ";"], f"{who}: a pool pre-ping was sent"
        assert not [s for s in create + batch if "access_tokens" in s or "grants" in s], f"{who}: auth not cached"
        assert len(create) <= 7, f"{who} create run: {create}"  # BEGIN, SET LOCAL, run, 3 params, COMMIT
        assert len(batch) <= 5, f"{who} log-batch: {batch}"  # BEGIN, SET LOCAL, points, latest, COMMIT


def srv_store(srv: ServerProc) -> Any:
    from roost.registry.store import open_store

    return open_store(srv.store_url)


# -- invalidation, in every worker ---------------------------------------------------------------------------
def test_revoked_token_refused_by_every_worker_at_once(pg_server: ServerProc) -> None:
    from roost.registry import accounts

    srv = pg_server
    token = srv.account("rev_tok")
    assert _statuses(srv, token, "GET", "/whoami") == [200] * N
    accounts.revoke_token(srv_store(srv), token)  # as `roost tokens revoke` does, from another process
    assert _statuses(srv, token, "GET", "/whoami") == [401] * N


def test_grant_and_membership_taken_back_at_once(pg_server: ServerProc) -> None:
    from roost.registry import grants

    srv, store = pg_server, srv_store(pg_server)
    token = srv.account("rev_grant")
    rid = _new_run(srv)
    grants.grant(store, "rev_grant", "experiment", "e", "edit")
    assert _statuses(srv, token, "POST", f"/runs/{rid}/log-batch", _log_batch()) == [200] * N
    grants.revoke(store, "rev_grant", "experiment", "e")
    assert _statuses(srv, token, "POST", f"/runs/{rid}/log-batch", _log_batch()) == [403] * N
    grants.create_group(store, "g_rev")
    grants.grant(store, "group:g_rev", "experiment", "e", "edit")
    grants.add_member(store, "g_rev", "rev_grant")  # the token's cached groups change too
    assert _statuses(srv, token, "POST", f"/runs/{rid}/log-batch", _log_batch()) == [200] * N
    grants.remove_member(store, "g_rev", "rev_grant")
    assert _statuses(srv, token, "POST", f"/runs/{rid}/log-batch", _log_batch()) == [403] * N


def test_disabled_account_and_admin_taken_back_at_once(pg_server: ServerProc) -> None:
    from roost.registry import accounts

    srv, store = pg_server, srv_store(pg_server)
    token = srv.account("rev_admin", admin=True)
    assert _statuses(srv, token, "POST", "/runs/mark-lost", {"timeout_s": 3600}) == [200] * N
    accounts.set_admin(store, "rev_admin", False)
    assert _statuses(srv, token, "POST", "/runs/mark-lost", {"timeout_s": 3600}) == [403] * N
    accounts.set_disabled(store, "rev_admin")
    assert _statuses(srv, token, "POST", "/runs/mark-lost", {"timeout_s": 3600}) == [401] * N


def test_token_refused_at_its_expiry(pg_server: ServerProc) -> None:
    from roost.registry import accounts

    srv, store = pg_server, srv_store(pg_server)
    accounts.create_user(store, "rev_exp", None)
    new = accounts.create_token(store, "rev_exp", expires_in=timedelta(seconds=3))
    expires = new.record.expires_at
    assert expires is not None
    seen: list[tuple[float, int]] = []
    while True:
        before = time.time()
        status = httpx.get(srv.url + "/api/v1/whoami", headers=bearer(new.token), timeout=30).status_code
        seen.append((before, status))
        if before > expires.timestamp() + 0.5:
            break
        time.sleep(0.05)
    assert seen[0][1] == 200  # cached from here on
    # every answer to a request sent after the expiry is 401; one answered before it is 200
    assert all(s == 401 for t, s in seen if t >= expires.timestamp()), seen
    assert any(s == 200 for t, s in seen if t < expires.timestamp() - 0.2), seen


def test_listener_cut_means_no_cache(pg_server: ServerProc) -> None:
    """With the listener's backend terminated, a revoke (whose notification nobody hears) still takes effect."""
    from roost.registry import accounts

    srv = pg_server
    token = srv.account("rev_cut")
    assert _statuses(srv, token, "GET", "/whoami") == [200] * N
    db = srv.store_url.rsplit("/", 1)[1]
    killed = _sql(
        srv.store_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        db,
        LISTENER,
    )
    assert len(killed) == 2  # one listener per worker
    accounts.revoke_token(srv_store(srv), token)
    assert _statuses(srv, token, "GET", "/whoami") == [401] * N


def test_terminated_pool_connections_are_replaced(pg_server: ServerProc) -> None:
    """No pre-ping: a pooled connection whose backend is gone is seen from its socket and replaced."""
    srv = pg_server
    token = srv.account("term")
    from roost.registry import grants

    grants.grant(srv_store(srv), "term", "experiment", "e", "edit")
    rid = _new_run(srv)
    assert _statuses(srv, token, "GET", f"/runs/{rid}") == [200] * N
    db = srv.store_url.rsplit("/", 1)[1]
    killed = _sql(
        srv.store_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name <> %s "
        "AND pid <> pg_backend_pid()",
        db,
        LISTENER,
    )
    assert killed
    time.sleep(0.2)  # the backends exit (their FATAL and EOF reach the pooled sockets)
    assert _statuses(srv, token, "GET", f"/runs/{rid}") == [200] * N
    assert _statuses(srv, token, "POST", f"/runs/{rid}/log-batch", _log_batch()) == [200] * N
