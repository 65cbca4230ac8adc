"""The Host allow-list's remembered verdicts (#35 item 2: one dict look-up instead of parsing the same Host header on
every request): a refused host stays refused, a changed allow-list applies at once, many distinct hosts are still
judged one by one."""

from __future__ import annotations

import orjson
from servekit import InProcess

from roost.netpolicy import host_allowed
from roost.serve.app import HOSTS_SEEN_MAX
from roost.serve.worker import create_app


def _status(ip: InProcess, host: str) -> int:
    return ip.request("GET", "/v2/health/live", headers={"host": host})[0]


def test_host_verdicts_match_the_allow_list_every_time(pkgs):
    app = create_app([str(pkgs["bc"])], host="127.0.0.1", allowed_hosts=["serve.example.com"])
    ip = InProcess(app)
    try:
        for _ in range(3):
            assert _status(ip, "127.0.0.1:8080") == 200
            assert _status(ip, "serve.example.com") == 200
            status, _, body = ip.request("GET", "/v2/health/live", headers={"host": "evil.example"})
            assert status == 400 and b"Host" in body
        app.allowed_hosts = ["evil.example"]  # a new list: its verdicts, not the old ones
        assert _status(ip, "evil.example") == 200
        assert _status(ip, "127.0.0.1:8080") == 400
        app.allowed_hosts = ["*.example.com"]
        names = [f"h{i}.example.{'com' if i % 2 else 'org'}" for i in range(3 * HOSTS_SEEN_MAX)]
        for name in names + names[::-1]:
            want = 200 if host_allowed(name.encode(), ["*.example.com"]) else 400
            assert _status(ip, name) == want, name
        assert len(app._hosts_seen[1]) <= HOSTS_SEEN_MAX
        assert orjson.loads(ip.request("GET", "/v2/health/live", headers={"host": "a.example.com"})[2]) == {
            "live": True
        }
    finally:
        ip.close()
