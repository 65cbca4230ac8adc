"""`roost notebook`: JupyterLab answers with its token, moves off a busy port, and its kernel sees roost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _read_url(proc: subprocess.Popen, timeout: float = 180.0) -> tuple[str, str]:
    """Read the CLI's stdout until it prints the lab URL; returns (url, everything printed)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(line)
        if line.startswith("http://"):
            return line.strip(), "".join(seen)
    raise AssertionError(f"no URL printed: {''.join(seen)!r}")


async def _execute(port: int, token: str, kernel_id: str, code: str) -> str:
    """Run `code` in a kernel over the server's websocket; returns its stdout."""
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?token={token}")
    msg_id = uuid.uuid4().hex
    ws.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    # The reply (shell channel) and the printed output (iopub) travel on different channels, so the reply may
    # arrive first: the output is complete only once iopub reports the kernel idle for this request.
    out = []
    replied = idle = False
    while not (replied and idle):
        raw = await asyncio.wait_for(ws.read_message(), 90)
        assert raw is not None, "websocket closed"
        m = json.loads(raw)
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            out.append(m["content"]["text"])
        elif m["msg_type"] == "error":
            raise AssertionError(f"kernel error: {m['content']['ename']}: {m['content']['evalue']}")
        elif m["msg_type"] == "execute_reply":
            replied = True
        elif m["msg_type"] == "status" and m["content"].get("execution_state") == "idle":
            idle = True
    ws.close()
    return "".join(out)


@pytest.fixture
def busy_port():
    """A port held by a listening socket for the test's duration."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def test_notebook_cli_url_token_busy_port_and_roost_kernel(ws, busy_port):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "JUPYTER"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "roost.cli.main", "notebook", "--port", str(busy_port)],
        cwd=ws.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url, printed = _read_url(proc)
        print(printed)  # shows the measured time-to-URL in -s output
        assert f"port {busy_port} is in use" in printed
        base, _, token = url.partition("/lab?token=")
        port = int(base.rsplit(":", 1)[1])
        assert port != busy_port and base.startswith("http://127.0.0.1:")

        assert _get(f"{base}/api/status?token={token}")[0] == 200
        assert _get(f"{base}/api/status")[0] == 403
        assert _get(f"{base}/api/status?token=wrong")[0] == 403

        status, body = _get(f"{base}/api/kernelspecs?token={token}")
        specs = json.loads(body)
        assert specs["default"] == "roost"
        spec = specs["kernelspecs"]["roost"]["spec"]
        assert spec["argv"][0] == sys.executable
        assert spec["env"]["ROOST_WORKSPACE"] == str(ws.root)

        req = urllib.request.Request(
            f"{base}/api/kernels?token={token}", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        with OPENER.open(req, timeout=30) as r:
            kernel = json.loads(r.read())
        assert kernel["name"] == "roost"
        out = asyncio.run(
            _execute(
                port,
                token,
                kernel["id"],
                "import os, sys, roost\nfrom roost import workspace\n"
                "print(sys.executable); print(workspace.current().root)",
            )
        )
        assert out.split() == [sys.executable, str(ws.root)]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(90)  # (only a hang guard: stopping the server and its kernel is slow on a loaded machine)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # the CLI stopped its server (own session) on SIGTERM: the port no longer answers
    assert proc.returncode == 0
    assert _wait_gone(f"{base}/api/status?token={token}")


def _wait_gone(url: str, timeout: float = 90.0) -> bool:
    """True once nothing answers at `url` (polled: shutting down takes the server a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            OPENER.open(url, timeout=2).close()
        except (urllib.error.URLError, OSError):
            return True
        time.sleep(0.2)
    return False


def test_server_stops_when_its_launcher_dies(ws):
    """A process that calls launch() and dies without stop() (SIGKILL) takes its server with it."""
    code = (
        "import os, sys; from roost.notebook import launch; s = launch(timeout=180); "
        "print(s.status_url, s.process.pid, flush=True); os.kill(os.getpid(), 9)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "JUPYTER"))}
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ws.root, env=env, capture_output=True, text=True, timeout=240
    )
    # (a loaded 2-core CI machine can take over a minute to start JupyterLab: the other tests here wait 180 s too)
    assert len(res.stdout.split()) == 2, f"launch() failed (exit {res.returncode}): {res.stderr[-3000:]}"
    url, pid = res.stdout.split()
    try:
        assert _wait_gone(url), "server outlived its launcher"
    finally:
        try:
            os.killpg(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_launch_needs_a_workspace(tmp_path, monkeypatch):
    from roost import workspace
    from roost.errors import RoostError
    from roost.notebook import launch

    monkeypatch.delenv("ROOST_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    workspace.use(None)
    with pytest.raises(RoostError, match="no roost workspace found"):
        launch()


def test_choose_port_moves_off_a_busy_port(busy_port, caplog):
    from roost.notebook.server import choose_port, port_free

    got = choose_port(busy_port)
    assert got != busy_port and port_free(got)
    assert f"port {busy_port} is in use" in caplog.text


def test_cli_module_imports_nothing_heavy():
    probe = (
        "import sys, roost.cli.notebook, roost.notebook; heavy = [m for m in ('papermill', 'nbformat', "
        "'jupyter_client', 'jupyterlab', 'IPython', 'sqlalchemy', 'rich') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
