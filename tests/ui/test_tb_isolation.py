"""The TensorBoards the UI launches are reachable only through the UI (issue 30, item 3): TensorBoard has no token
and checks no Host, so its URL prefix is a secret the UI process alone holds — not derived from the runs, not on
the command line `ps` shows, not in a world-readable file — and the UI's proxy applies the UI's token and checks."""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path

import httpx

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from roost.ui import create_app

TOKEN = "s3cret-token-123"


def _launch(c: TestClient, runs: list[str], **kw) -> dict:
    r = c.post("/api/tensorboard", json={"runs": runs}, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_board_prefix_is_not_derived_from_the_runs(populated, fake_tb_command):
    """Before: the key was sha256 of the run names and dirs — anyone who knows the runs knows the URL."""
    app = create_app(tb_command=fake_tb_command)
    runs = [populated["a"], populated["b"]]
    with TestClient(app, follow_redirects=False) as c:
        first = _launch(c, runs)
        spec = app.state.ui.tb.boards[first["key"]].spec
        assert first["key"] != hashlib.sha256(repr(sorted(spec)).encode()).hexdigest()[:12]
        assert len(first["key"]) >= 22  # 128 random bits
        assert c.delete(f"/api/tensorboard/{first['key']}").status_code == 200
        second = _launch(c, runs)
        assert second["key"] != first["key"]  # same runs, new board: a new secret


def test_prefix_is_not_on_the_command_line_nor_in_readable_files(populated, fake_tb_command, tmp_path):
    app = create_app(tb_command=fake_tb_command, tb_log_dir=tmp_path / "tblogs")
    with TestClient(app, follow_redirects=False) as c:
        board = app.state.ui.tb.boards[_launch(c, [populated["a"]])["key"]]
        cmdline = Path(f"/proc/{board.proc.pid}/cmdline").read_bytes()
        assert board.key.encode() not in cmdline  # before: --path_prefix /tb/<key> for every local user to read
        assert board.flagfile is None  # deleted once TensorBoard answered
        for f in (tmp_path / "tblogs").iterdir():
            assert board.key not in f.name
            assert stat.S_IMODE(os.stat(f).st_mode) & 0o077 == 0, f  # the log may hold the URL: owner only


def test_direct_requests_to_the_board_port_find_nothing(populated, fake_tb_command):
    """A DNS-rebinding page that found the port still cannot guess the prefix; the UI's proxy needs the token."""
    app = create_app(token=TOKEN, tb_command=fake_tb_command, allowed_hosts=["127.0.0.1"])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, base_url="http://127.0.0.1:5000", follow_redirects=False) as c:
        info = _launch(c, [populated["a"]], headers=auth)
        port, where = info["port"], info["path"]
        for path in ("/", "/data/runs", "/tb/", f"/tb/{info['key'][:12]}/"):
            r = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "evil.example:6006"})
            assert r.status_code == 404, path
        assert c.get(where).status_code == 401  # the proxy is behind the UI's token
        assert c.get(where, headers={**auth, "Host": "evil.example"}).status_code == 400  # and its Host check
        ok = c.get(where + "data/runs", headers=auth)
        assert ok.status_code == 200 and "fake tensorboard" in ok.text
        refused = c.post(where + "data/x", headers={**auth, "Origin": "http://evil.example"}, content=b"a=1")
        assert refused.status_code == 403
