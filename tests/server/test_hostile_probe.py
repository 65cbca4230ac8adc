"""A hostile probe of the team server (issue 31, "Done when"): bad credentials of every kind, another user's
experiment, a read role writing, traversal in artifact paths, oversized uploads and bodies, cross-site posts and
1,000 wrong passwords — each answered 4xx, nothing written (store tables and the artifact folder compared), each
attempt in the audit log (actor or none, status, path, client), and no token or password anywhere in the DB file."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

SKIP_TABLES = {"audit_events", "access_tokens", "idempotency_keys", "alembic_version"}
ML = "/api/2.0/mlflow"


class Probe:
    """A server (default role none, small limits) with alice's experiment and run, and the probing accounts."""

    def __init__(self, root: Path) -> None:
        from starlette.testclient import TestClient

        from roost.registry import accounts, grants
        from roost.server.app import create_server_app
        from roost.server.settings import ServerSettings

        self.root, self.art = root, root / "artifacts"
        self.db = root / "server.db"
        settings = ServerSettings(
            f"sqlite:///{self.db}", f"file://{self.art}", default_role="none", max_upload_bytes=1024,
            max_body_bytes=4096, login_attempts_per_minute=10,
        )  # fmt: skip
        self.client = TestClient(
            create_server_app(settings), base_url="http://127.0.0.1", client=("127.0.0.1", 40000),
            follow_redirects=False,
        )  # fmt: skip
        st = self.store = settings.store()
        self.secrets: list[str] = []
        self.tokens: dict[str, str] = {}
        for name in ("alice", "bob", "carol", "dave"):
            pw = f"pw-{name}-{os.urandom(6).hex()}"
            self.secrets.append(pw)
            accounts.create_user(st, name, pw)
            self.tokens[name] = accounts.create_token(st, name).token
        self.passwords = dict(zip(("alice", "bob", "carol", "dave"), self.secrets, strict=True))
        self.tokens["expired"] = accounts.create_token(st, "alice", expires_in=timedelta(milliseconds=1)).token
        self.tokens["revoked"] = accounts.create_token(st, "alice").token
        accounts.revoke_token(st, self.tokens["revoked"])
        accounts.set_disabled(st, "dave")
        self.secrets += list(self.tokens.values())
        time.sleep(0.01)
        h = self.auth("alice")
        eid = self.client.post(f"{ML}/experiments/create", json={"name": "secret-exp"}, headers=h).json()
        self.eid = eid["experiment_id"]
        self.rid = self.client.post(f"{ML}/runs/create", json={"experiment_id": self.eid}, headers=h).json()["run"][
            "info"
        ]["run_id"]
        assert self.client.put(f"/api/v1/artifacts/runs/{self.rid}/a.txt", content=b"ok", headers=h).status_code == 200
        grants.grant(st, "bob", "experiment", "secret-exp", "read")
        self.outside = root / "outside"
        self.outside.mkdir()
        (self.outside / "loot.txt").write_text("outside")
        run_dir = self.art / str(self.eid) / self.rid / "artifacts"
        (run_dir / "link").symlink_to(self.outside, target_is_directory=True)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def snapshot(self) -> dict[str, str]:
        from sqlalchemy import inspect, text

        out = {}
        with self.store.engine.connect() as c:
            for t in sorted(set(inspect(self.store.engine).get_table_names()) - SKIP_TABLES):
                rows = sorted(repr(tuple(r)) for r in c.execute(text(f'SELECT * FROM "{t}"')))
                out[t] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        for top in (self.art, self.outside):
            files = sorted((str(f), f.read_bytes()) for f in top.rglob("*") if f.is_file())
            out[str(top)] = hashlib.sha256(repr(files).encode()).hexdigest()
        return out

    def audit(self) -> list[Any]:
        from roost.registry import audit_log

        return audit_log.query(self.store, limit=10_000)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("ROOST_")]:
            mp.delenv(var)
        yield Probe(tmp_path_factory.mktemp("probe"))


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def attempts(p: Probe) -> list[tuple[str, str, str, dict[str, Any], str | None]]:
    """(label, method, url, request kwargs, the actor the audit row must name)."""
    rid, eid = p.rid, p.eid
    art = f"/api/v1/artifacts/runs/{rid}"
    mla = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts"
    log = {"run_id": rid, "key": "m", "value": 1, "step": 0, "timestamp": 1}
    a, b, c = p.auth("alice"), p.auth("bob"), p.auth("carol")
    return [
        ("no token", "POST", f"{ML}/runs/log-metric", {"json": log}, None),
        ("no token REST", "POST", f"/api/v1/runs/{rid}/log-batch", {"json": {"metrics": []}}, None),
        (
            "malformed token",
            "POST",
            f"{ML}/runs/log-metric",
            {"json": log, "headers": {"Authorization": "Bearer x"}},
            None,
        ),
        ("garbage scheme", "GET", f"{ML}/runs/get?run_id={rid}", {"headers": {"Authorization": "Negotiate abc"}}, None),
        ("expired token", "POST", f"{ML}/runs/log-metric", {"json": log, "headers": p.auth("expired")}, None),
        ("revoked token", "POST", f"{ML}/runs/log-metric", {"json": log, "headers": p.auth("revoked")}, None),
        ("disabled account", "POST", f"{ML}/runs/log-metric", {"json": log, "headers": p.auth("dave")}, None),
        ("disabled basic", "GET", f"{ML}/runs/get?run_id={rid}", {"headers": basic("dave", p.passwords["dave"])}, None),
        ("other's experiment", "GET", f"{ML}/runs/get?run_id={rid}", {"headers": c}, "carol"),
        ("other's run REST", "GET", f"/api/v1/runs/{rid}", {"headers": c}, "carol"),
        ("other's artifact", "GET", f"{art}/a.txt", {"headers": c}, "carol"),
        ("read role logs", "POST", f"{ML}/runs/log-metric", {"json": log, "headers": b}, "bob"),
        (
            "read role REST",
            "POST",
            f"/api/v1/runs/{rid}/log-batch",
            {"json": {"metrics": [["m", 1, 0, 1]]}, "headers": b},
            "bob",
        ),
        ("read role deletes", "DELETE", f"/api/v1/runs/{rid}", {"headers": b}, "bob"),
        ("read role uploads", "PUT", f"{art}/b.txt", {"content": b"x", "headers": b}, "bob"),
        ("read role MLflow upload", "PUT", f"{mla}/b.txt", {"content": b"x", "headers": b}, "bob"),
        ("dotdot", "PUT", f"{art}/%2e%2e/%2e%2e/x.txt", {"content": b"x", "headers": a}, "alice"),
        ("dotdot encoded slash", "PUT", f"{art}/a/..%2F..%2F..%2Fx.txt", {"content": b"x", "headers": a}, "alice"),
        ("absolute", "PUT", f"{art}//tmp/x.txt", {"content": b"x", "headers": a}, "alice"),
        ("backslash", "PUT", f"{art}/..%5C..%5Cx.txt", {"content": b"x", "headers": a}, "alice"),
        ("NUL", "PUT", f"{art}/x%00.txt", {"content": b"x", "headers": a}, "alice"),
        ("symlink escape write", "PUT", f"{art}/link/x.txt", {"content": b"x", "headers": a}, "alice"),
        ("symlink escape read", "GET", f"{art}/link/loot.txt", {"headers": a}, "alice"),
        ("MLflow dotdot", "PUT", f"{mla}/%2e%2e/%2e%2e/x.txt", {"content": b"x", "headers": a}, "alice"),
        ("MLflow symlink", "PUT", f"{mla}/link/x.txt", {"content": b"x", "headers": a}, "alice"),
        ("MLflow symlink read", "GET", f"{mla}/link/loot.txt", {"headers": a}, "alice"),
        ("oversized upload", "PUT", f"{art}/big.bin", {"content": b"x" * 2048, "headers": a}, "alice"),
        ("oversized MLflow upload", "PUT", f"{mla}/big.bin", {"content": b"x" * 2048, "headers": a}, "alice"),
        (
            "oversized JSON",
            "POST",
            f"/api/v1/runs/{rid}/log-batch",
            {"json": {"params": {"p": "x" * 8000}}, "headers": a},
            "alice",
        ),
        (
            "oversized MLflow JSON",
            "POST",
            f"{ML}/runs/log-batch",
            {"json": {"run_id": rid, "tags": [{"key": "t", "value": "x" * 8000}]}, "headers": a},
            "alice",
        ),
        (
            "cross-site API POST",
            "POST",
            f"{ML}/runs/log-metric",
            {"json": log, "headers": {**a, "Origin": "http://evil.example"}},
            None,
        ),
        ("form to the API", "POST", f"{ML}/runs/log-metric", {"data": {"run_id": rid}, "headers": a}, None),
        (
            "cross-site login",
            "POST",
            "/login",
            {"data": {"name": "alice", "password": "x"}, "headers": {"Origin": "http://evil.example"}},
            None,
        ),
        ("login without CSRF", "POST", "/login", {"data": {"name": "alice", "password": "x"}}, None),
    ]


def test_every_hostile_request_is_refused_unwritten_and_audited(probe: Probe) -> None:
    wrong = []
    for label, method, url, kw, actor in attempts(probe):
        before, n_audit = probe.snapshot(), len(probe.audit())
        r = probe.client.request(method, url, **kw)
        if not 400 <= r.status_code < 500:
            wrong.append(f"{label}: {method} {url} answered {r.status_code} {r.text[:200]}")
        if probe.snapshot() != before:
            wrong.append(f"{label}: something was written")
        rows = probe.audit()[: len(probe.audit()) - n_audit]
        path = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), url.split("?")[0])
        if len(rows) != 1:
            wrong.append(f"{label}: {len(rows)} audit rows")
        else:
            row = rows[0]
            if (row.status, row.client, row.actor) != (r.status_code, "127.0.0.1", actor) or row.resource != path:
                wrong.append(f"{label}: audit row {row} (answer {r.status_code}, path {path!r}, actor {actor})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("how", ["form", "basic"])
def test_1000_wrong_passwords(probe: Probe, how: str) -> None:
    from roost.server.login import CSRF_FIELD

    c = probe.client
    page = c.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text[:300]
    before, n_audit, statuses = probe.snapshot(), len(probe.audit()), []
    for i in range(1000):
        pw = f"wrong-{how}-{i}-{os.urandom(4).hex()}"
        probe.secrets.append(pw)
        if how == "form":
            r = c.post("/login", data={"name": "alice", "password": pw, CSRF_FIELD: csrf.group(1)})
        else:
            r = c.get(f"{ML}/experiments/search", headers=basic("alice", pw))
        statuses.append(r.status_code)
    assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))
    first = statuses.index(429)  # the limit counts per account and per client (earlier failures of the probe too)
    assert 1 <= first <= 10 and set(statuses[:first]) == {401} and set(statuses[first:]) == {429}, statuses[:12]
    assert probe.snapshot() == before
    rows = probe.audit()[: len(probe.audit()) - n_audit]
    assert len(rows) == 1000 and {r.status for r in rows} == {401, 429}
    assert all(r.client == "127.0.0.1" and r.resource in ("/login", f"{ML}/experiments/search") for r in rows)
    # the right password is refused too while the limit holds (no oracle for a guesser)
    good = probe.passwords["alice"]
    r = c.get(f"{ML}/experiments/search", headers=basic("alice", good)) if how == "basic" else None
    assert r is None or r.status_code == 429


def test_no_secret_in_the_database_file(probe: Probe) -> None:
    probe.store.engine.dispose()
    raw = b"".join(f.read_bytes() for f in probe.root.glob("server.db*"))
    leaked = [s for s in probe.secrets if s.encode() in raw]
    from roost.registry.accounts import split_token

    secrets = [split_token(t) for t in probe.tokens.values()]  # the secret part alone must not be there either
    leaked += [s[1] for s in secrets if s is not None and s[1].encode() in raw]
    assert len(secrets) == len(probe.tokens) and all(s is not None for s in secrets)
    assert not leaked, leaked[:5]
