"""An unreachable S3 endpoint fails fast with a RoostError naming the endpoint and URL, credentials redacted.

Two kinds of unreachable, both on loopback so that no outside network is involved: a closed port (connection
refused at once) and a black hole (a listener whose accept queue is full, so SYNs are dropped and only the
connect timeout ends the attempt — what a non-routable address does).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from roost.errors import RoostError

pytest.importorskip("s3fs", reason="S3 artifacts need s3fs (pip install 'roost[s3]')")

HANG_GUARD_S = 60  # only there so a regression fails instead of hanging; the expected time is a few seconds


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


@pytest.fixture
def black_hole():
    """A loopback port that never completes a TCP handshake: listen(0) with its accept queue filled."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    probe = socket.socket()
    probe.settimeout(0.5)
    with pytest.raises(OSError):  # check the premise: a connect now times out
        probe.connect(("127.0.0.1", port))
    probe.close()
    yield port
    for c in fillers:
        c.close()
    srv.close()


def _outcome(fn) -> BaseException | None:
    """Run fn in a thread; the exception it raised (None if none). Fails if it is still running after the guard."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            box[0] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(HANG_GUARD_S)
    assert not t.is_alive(), f"still waiting after {HANG_GUARD_S} s: the unreachable endpoint hangs"
    return box[0]


def _ops(tmp_path: Path) -> dict:
    from roost import artifacts

    f = tmp_path / "notes.txt"
    f.write_text("hello")
    return {
        "put": lambda: artifacts.put(f, "s3://roost-artifacts/x/notes.txt"),
        "list_files": lambda: artifacts.list_files("s3://roost-artifacts/x"),
        "fetch": lambda: artifacts.fetch("s3://roost-artifacts/x/model", tmp_path / "cache" / "model"),
    }


def _assert_names_endpoint(exc: BaseException | None, shown_endpoint: str, uri_part: str) -> None:
    assert isinstance(exc, RoostError), repr(exc)
    assert f"cannot reach the S3 endpoint {shown_endpoint} " in exc.message, exc.message
    assert uri_part in exc.message and exc.hint and "FSSPEC_S3_ENDPOINT_URL" in exc.hint
    assert "s3cret" not in str(exc)


@pytest.mark.parametrize("op", ["put", "list_files", "fetch"])
def test_closed_port(s3_env, tmp_path, op):
    ep = f"http://127.0.0.1:{_closed_port()}"
    s3_env(ep)
    _assert_names_endpoint(_outcome(_ops(tmp_path)[op]), ep, "s3://roost-artifacts/x")


def test_black_hole_ends_with_the_connect_timeout(s3_env, black_hole, tmp_path):
    ep = f"http://127.0.0.1:{black_hole}"
    s3_env(ep)
    exc = _outcome(_ops(tmp_path)["put"])
    _assert_names_endpoint(exc, ep, "s3://roost-artifacts/x")
    assert "timeout" in exc.message.lower()


def test_endpoint_password_is_redacted(s3_env, tmp_path):
    port = _closed_port()
    s3_env(f"http://minio:s3cret@127.0.0.1:{port}")
    _assert_names_endpoint(
        _outcome(_ops(tmp_path)["list_files"]), f"http://minio:***@127.0.0.1:{port}", "s3://roost-artifacts/x"
    )


def test_credentials_in_the_root_url_are_refused_redacted(s3_env, tmp_path):
    from roost import artifacts

    s3_env(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(RoostError) as e:
        artifacts.list_files("s3://AKID:s3cret@roost-artifacts/x")
    assert "s3://AKID:***@roost-artifacts/x" in e.value.message and "s3cret" not in str(e.value)


def test_timeouts_and_retries_are_set_and_user_config_wins(s3_env, monkeypatch):
    """roost's botocore config applies to s3:// roots; keys from fsspec's own s3 config override it."""
    import fsspec.config

    from roost import artifacts

    s3_env(f"http://127.0.0.1:{_closed_port()}")
    fs, _ = artifacts.filesystem("s3://roost-artifacts/x")
    assert fs.config_kwargs == artifacts.S3_CONFIG
    monkeypatch.setenv("FSSPEC_S3", json.dumps({"config_kwargs": {"connect_timeout": 1}}))
    fsspec.config.conf.clear()
    fsspec.config.set_conf_env(fsspec.config.conf)
    fs, _ = artifacts.filesystem("s3://roost-artifacts/x")
    assert fs.config_kwargs["connect_timeout"] == 1 and fs.config_kwargs["retries"] == artifacts.S3_CONFIG["retries"]


def test_cli_prints_one_line_and_exits_2(tmp_path):
    """`roost runs show` (reads artifacts) and `roost notebook diff --log-to` (writes one): exit 2, no traceback."""
    import nbformat

    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "FSSPEC_", "AWS_"))}
    env.update(
        ROOST_ARTIFACTS="s3://roost-artifacts/team",
        FSSPEC_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="k",
        AWS_SECRET_ACCESS_KEY="s3cret-key",
        AWS_DEFAULT_REGION="us-east-1",
        COLUMNS="200",
    )
    ws = tmp_path / "ws"
    for nb in ("a", "b"):
        n = nbformat.v4.new_notebook()
        n.cells.append(nbformat.v4.new_code_cell(f"print('{nb}')"))
        nbformat.write(n, tmp_path / f"{nb}.ipynb")

    def roost(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "roost.cli.main", *args]
        return subprocess.run(
            cmd, cwd=ws if ws.exists() else tmp_path, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S * 2
        )

    assert roost("init", str(ws)).returncode == 0
    made = roost(code="import roost\nwith roost.start_run(name='s3') as r: print(r.id)")
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.strip().splitlines()[-1]
    for args in (
        ["runs", "show", run_id],
        ["notebook", "diff", str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb"), "--log-to", run_id],
    ):
        p = roost(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith(
            f"error: cannot reach the S3 endpoint http://127.0.0.1:{port} for s3://roost-artifacts/team/"
        )
        assert lines[1].startswith("hint: ") and "Traceback" not in p.stderr and "s3cret" not in p.stderr
