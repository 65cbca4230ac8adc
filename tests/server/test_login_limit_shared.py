"""The wrong-password limit holds for the whole server, not per worker: every worker of one `roost server` counts
failures in one shared table, so 3 workers do not give an attacker 3 × the attempts (docs/security.md)."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import httpx
from tests.server.conftest import ServerProc


def _basic(name: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_two_limiters_on_one_file_count_together(tmp_path: Path) -> None:
    """Two workers' limiters (two objects on the same file) block after the limit's total, not each."""
    from roost.server.limiter import SharedLoginLimiter

    path = str(tmp_path / "fails.db")
    a, b = SharedLoginLimiter(5, path), SharedLoginLimiter(5, path)
    keys = ["account:alice", "client:10.0.0.9"]
    for i in range(5):
        assert not a.blocked(keys) and not b.blocked(keys)
        (a if i % 2 else b).failed(keys)
    assert a.blocked(keys) and b.blocked(keys)
    assert a.blocked(["account:alice"]) and not a.blocked(["account:bob"])


def test_blocked_reads_the_table_only_after_a_failure_anywhere(tmp_path: Path, monkeypatch: Any) -> None:
    """blocked() runs on every HTTP Basic request: while nobody failed a sign-in it answers from memory (one
    `PRAGMA data_version`, no count), yet a failure on another worker, or on its own connection, blocks at once,
    and the lockout ends exactly when the limit's oldest counted failure leaves the window."""
    from roost.server import limiter as mod

    now = [1_000_000.0]
    monkeypatch.setattr(mod.time, "time", lambda: now[0])
    path = str(tmp_path / "fails.db")
    a, b = mod.SharedLoginLimiter(3, path), mod.SharedLoginLimiter(3, path)
    keys = ["account:alice", "client:10.0.0.9"]
    sent: list[str] = []
    a.blocked(keys)
    a._db().set_trace_callback(sent.append)
    for _ in range(50):
        assert not a.blocked(keys)
    assert not [q for q in sent if "fails" in q], sent[:4]  # before: two counts per call
    for _ in range(3):  # another worker's failures, 10 s apart
        now[0] += 10
        assert not a.blocked(keys)
        b.failed(["account:alice", "client:10.0.0.1"])
    assert a.blocked(keys) and a.blocked(["account:alice"]) and not a.blocked(["account:bob"])
    first_counted = 1_000_010.0
    now[0] = first_counted + mod.WINDOW_S - 0.01
    assert a.blocked(keys)
    now[0] = first_counted + mod.WINDOW_S + 0.01
    assert not a.blocked(keys) and not b.blocked(keys)
    for _ in range(3):  # its own failures: its own commits leave its data_version unchanged
        assert not a.blocked(["account:carol"])
        a.failed(["account:carol"])
    assert a.blocked(["account:carol"]) and b.blocked(["account:carol"])


def test_failures_from_many_threads_are_all_counted(tmp_path: Path) -> None:
    """Concurrent failures (a worker's thread pool, several workers) lose no count."""
    from roost.server.limiter import SharedLoginLimiter

    path = str(tmp_path / "fails.db")
    lims = [SharedLoginLimiter(1000, path) for _ in range(4)]

    def hammer(lim: Any) -> None:
        for _ in range(50):
            lim.failed(["account:x"])

    threads = [threading.Thread(target=hammer, args=(lim,)) for lim in lims for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lims[0].recent("account:x") == 400


def test_old_failures_expire_and_the_table_stays_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    """Failures older than a minute no longer count, and are pruned (a flood of fresh names stays bounded)."""
    from roost.server import limiter as mod

    now = [1_000_000.0]
    monkeypatch.setattr(mod.time, "time", lambda: now[0])
    lim = mod.SharedLoginLimiter(3, str(tmp_path / "fails.db"), max_rows=500)
    for _ in range(3):
        lim.failed(["account:a"])
    assert lim.blocked(["account:a"])
    now[0] += 61
    assert not lim.blocked(["account:a"])
    for i in range(2000):
        lim.failed([f"account:flood{i}"])
    assert lim.rows() <= 500 + 64  # pruned every 64 failures: the bound plus one interval's rows


def test_a_three_worker_server_allows_the_limit_once_not_per_worker(tmp_path: Path) -> None:
    """40 wrong passwords, each on a fresh connection (any of 3 workers takes it): 10 × 401, then only 429."""
    srv = ServerProc(tmp_path / "server", workers=3)
    srv.account("alice", "correct horse battery")
    srv.start()
    try:
        codes = []
        for i in range(40):
            with httpx.Client(timeout=30) as c:  # a new connection each time
                codes.append(c.get(srv.url + "/api/v1/whoami", headers=_basic("alice", f"guess-{i}")).status_code)
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    finally:
        srv.stop()
