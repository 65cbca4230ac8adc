"""A TensorBoard that roost starts for a run (`roost tensorboard RUN`, `roost train --tensorboard`) answers only under
the random prefix of the URL it prints: TensorBoard has no token, so the port alone (found by a port scan or a
DNS-rebinding page, under any Host header) must give nothing. docs/security.md."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from roost.training.tensorboard import start, stop

pytestmark = pytest.mark.slow


def _cmdlines() -> bytes:
    out = b""
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                out += (p / "cmdline").read_bytes() + b"\n"
            except OSError:
                continue
    return out


def test_board_answers_only_under_its_secret_prefix(tmp_path: Path) -> None:
    proc, url = start(tmp_path / "events")
    try:
        parts = urlsplit(url)
        prefix = parts.path.strip("/")
        assert len(prefix) >= 32, url  # 128 bits, not a guessable name
        assert httpx.get(url, timeout=10).status_code == 200
        root = f"{parts.scheme}://{parts.netloc}"
        for path in ("/", "/data/runs", "/data/plugins_listing", "/tb/", "/" + prefix[:-1] + "/"):
            assert httpx.get(root + path, timeout=10).status_code == 404, path
        rebound = httpx.get(root + "/", headers={"Host": "attacker.example"}, timeout=10)
        assert rebound.status_code == 404
        assert prefix.encode() not in _cmdlines()  # not on any command line other users can read in ps
    finally:
        stop(proc)


def test_two_boards_get_different_prefixes(tmp_path: Path) -> None:
    a, url_a = start(tmp_path / "a")
    try:
        b, url_b = start(tmp_path / "b")
        stop(b)
    finally:
        stop(a)
    assert urlsplit(url_a).path != urlsplit(url_b).path
