"""The fleet for real: crashed workers restart, SIGTERM drains, hot swap under load loses no request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from servekit import Server, v2_body


def ref(pkg: Path, cols: list[str], X: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(pkg / "model.onnx"))
    return s.run(None, {c: X[:, i] for i, c in enumerate(cols)})[0]


def fresh() -> httpx.Client:
    """A client that opens a new connection per request, so requests spread over the workers."""
    return httpx.Client(timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0))


def wait_until(cond, timeout: float = 120.0, what: str = "condition") -> None:
    """Poll `cond`; the timeout only guards against a hang (a loaded CI machine can be slow)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(what)


def _tcp_sockets() -> list[tuple[str, str, str, int, int]]:
    """(local, remote, state, tx_queue, rx_queue) of every IPv4 TCP socket, as /proc/net/tcp shows them."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        tx, rx = (int(q, 16) for q in f[4].split(":"))
        rows.append((f[1], f[2], f[3], tx, rx))
    return rows


def _loopback(port: int) -> str:
    return f"0100007F:{port:04X}"


def request_read_by_server(server_port: int, client_port: int) -> bool:
    """Everything we sent reached the server (our side has nothing unacknowledged), and then the server side of
    the connection is accepted and has read it all (its receive queue is empty): uvicorn parses the request
    head in the same callback that reads the data, so the request is in flight in the worker."""
    srv, cli = _loopback(server_port), _loopback(client_port)
    if not any(loc == cli and rem == srv and st == "01" and tx == 0 for loc, rem, st, tx, _ in _tcp_sockets()):
        return False
    return any(loc == srv and rem == cli and st == "01" and rx == 0 for loc, rem, st, _, rx in _tcp_sockets())


def listening(port: int) -> bool:
    return any(local == _loopback(port) and st == "0A" for local, _, st, _, _ in _tcp_sockets())


class LoadLoop:
    """Threads posting one row in a loop; records (status, version, value) of every response."""

    def __init__(self, url: str, body: dict, threads: int = 3) -> None:
        self.url, self.body = url, body
        self.results: list[tuple[int, str | None, float | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with fresh() as c:
            while not self._stop.is_set():
                try:
                    r = c.post(self.url, json=self.body)
                    d = r.json()
                    out = d.get("outputs", [{}])[0].get("data", [None])[0] if r.status_code == 200 else None
                    self.results.append((r.status_code, d.get("model_version"), out))
                except Exception as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> LoadLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def last_versions(self, n: int) -> set:
        return {v for _, v, _ in self.results[-n:]}


def test_crashed_worker_is_restarted_and_others_keep_serving(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    srv = Server([str(pkgs["bc"])], "--replicas", "2", log=tmp_path / "log")
    try:
        srv.wait_ready()
        before = srv.worker_pids()
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        with fresh() as c:
            for i in range(40):
                r = c.post(f"{srv.url}/v2/models/bc/infer", json=v2_body(cols, X[i : i + 1]))
                assert r.status_code == 200, r.text
        wait_until(lambda: len(srv.worker_pids()) == 2 and before[0] not in srv.worker_pids(), what="restart")
        new = (set(srv.worker_pids()) - set(before)).pop()
        assert "restarting" in srv.output()
        seen: set[int] = set()
        with fresh() as c:

            def served_by_new() -> bool:
                seen.add(c.get(f"{srv.url}/admin/status").json()["pid"])
                return new in seen

            wait_until(served_by_new, what="the new worker answers")
            for i in range(20):
                assert (
                    c.post(
                        f"{srv.url}/v1/models/bc:predict",
                        json={"inputs": {k: [float(X[i, j])] for j, k in enumerate(cols)}},
                    ).status_code
                    == 200
                )
            metrics = c.get(f"{srv.url}/metrics").text
        assert "roost_worker_restarts_total 1.0" in metrics
    finally:
        srv.stop()


def test_sigterm_drains_in_flight_request(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    srv = Server([str(pkgs["bc"])], log=tmp_path / "log")
    srv.wait_ready()
    try:
        body = json.dumps(v2_body(cols, X[:3])).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=120)  # (a hang guard for recv)
        s.sendall(
            b"POST /v2/models/bc/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:100]
        )
        client_port = s.getsockname()[1]
        # the worker has the headers: the request is in flight
        wait_until(lambda: request_read_by_server(srv.port, client_port), timeout=120, what="request in flight")
        os.kill(srv.proc.pid, signal.SIGTERM)
        # draining: supervisor and worker have closed the listening socket while our request is unfinished
        wait_until(lambda: not listening(srv.port), timeout=120, what="server stops listening")
        s.sendall(body[100:])
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, payload = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), data[:300]
        probs = np.array(json.loads(payload)["outputs"][0]["data"])
        np.testing.assert_allclose(probs, ref(pkgs["bc"], cols, X[:3]), rtol=1e-6, atol=1e-7)
        assert srv.proc.wait(timeout=30) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    finally:
        srv.stop()


def _inflight(url: str) -> float:
    text = fresh().get(f"{url}/metrics").text
    [line] = [ln for ln in text.splitlines() if ln.startswith("roost_inflight_requests")]
    return float(line.split()[-1])


def test_inflight_gauge_counts_a_request_being_handled(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    srv = Server([str(pkgs["bc"])], "--replicas", "2", log=tmp_path / "log")
    srv.wait_ready()
    try:
        assert _inflight(srv.url) == 0  # the scrape does not count itself
        body = json.dumps(v2_body(cols, X[:3])).encode()
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=120)
        s.sendall(
            b"POST /v2/models/bc/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:100]
        )
        wait_until(lambda: request_read_by_server(srv.port, s.getsockname()[1]), what="request in flight")
        wait_until(lambda: _inflight(srv.url) == 1, what="gauge at 1 while the body is incomplete")
        s.sendall(body[100:])
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        s.close()
        assert _inflight(srv.url) == 0  # decremented once answered (summed over both workers)
    finally:
        srv.stop()


def test_hot_swap_under_load_loses_nothing(pkgs, bc_data, tmp_path):
    X, _, cols = bc_data
    live = tmp_path / "live"
    shutil.copytree(pkgs["bc"], live)
    expect = {"1": float(ref(pkgs["bc"], cols, X[:1])[0]), "2": float(ref(pkgs["bc2"], cols, X[:1])[0])}
    assert abs(expect["1"] - expect["2"]) > 0.5
    srv = Server([f"churn={live}"], "--replicas", "2", log=tmp_path / "log")
    try:
        srv.wait_ready()
        url = f"{srv.url}/v2/models/churn/infer"
        with LoadLoop(url, v2_body(cols, X[:1])) as load:
            wait_until(lambda: len(load.results) > 30, what="load running")
            for name in ("model.onnx", "signature.json", "roost-model.yaml"):
                shutil.copy(pkgs["bc2"] / name, live / f".{name}.tmp")
                os.replace(live / f".{name}.tmp", live / name)
            with fresh() as c:
                r = c.post(f"{srv.url}/admin/reload")
            assert r.status_code == 200 and r.json()["models"][0]["swapped"] is True, r.text
            wait_until(lambda: len(load.results) > 60 and load.last_versions(30) == {"2"}, what="all on v2")
            with fresh() as c:  # every worker reports the new version
                pids_on_v2: set[int] = set()

                def all_swapped() -> bool:
                    st = c.get(f"{srv.url}/admin/status").json()
                    if st["models"][0]["version"] == "2":
                        pids_on_v2.add(st["pid"])
                    return pids_on_v2 >= set(srv.worker_pids())

                wait_until(all_swapped, what="every worker on v2")
        assert load.errors == []
        assert {s for s, _, _ in load.results} == {200}
        assert {v for _, v, _ in load.results} == {"1", "2"}
        for _, version, value in load.results:  # the version label always matches the model that answered
            assert abs(value - expect[version]) < 1e-5
        with fresh() as c:
            metrics = c.get(f"{srv.url}/metrics").text
        assert 'roost_model_version_loaded{model="churn",version="2"} 1.0' in metrics
        assert 'roost_model_version_loaded{model="churn",version="1"} 0.0' in metrics
    finally:
        srv.stop()


def test_broken_model_at_start_fails_fast(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.onnx").write_bytes(b"not onnx")
    (bad / "signature.json").write_text(json.dumps({"inputs": [{"name": "x"}], "outputs": [{"name": "y"}]}))
    srv = Server([str(bad)], log=tmp_path / "log")
    try:
        assert srv.proc.wait(timeout=60) != 0
        assert "cannot load" in srv.output() or "failed to start" in srv.output()
    finally:
        srv.stop()
    srv = Server([str(tmp_path / "nowhere")], log=tmp_path / "log2")
    try:
        assert srv.proc.wait(timeout=60) == 2
        assert "does not exist" in srv.output()
    finally:
        srv.stop()
