"""The fleet supervisor: one listening socket shared by N worker processes, restarted when they crash.

The parent binds the port and hands the socket to each worker (`python -m roost.serve.worker`); the kernel's
accept queue is shared, so a dead worker loses no queued connection. SIGTERM/SIGINT drain: workers stop
accepting, finish in-flight requests (up to grace_s) and exit. SIGHUP (or a worker's POST /admin/reload, which
arrives here as SIGUSR1) makes every worker re-resolve and hot-swap its models.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roost.errors import RoostError
from roost.serve.config import CONFIG_ENV, ServeConfig
from roost.serve.metrics import MULTIPROC_ENV

if TYPE_CHECKING:
    from roost.serve.metrics import Metrics
    from roost.serve.registration import FleetRegistration

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
HEALTHY_AFTER_S = 30.0


@dataclass
class _Worker:
    """One worker slot: its current process and restart bookkeeping."""

    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    backoff: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    history: list[int] = field(default_factory=list)


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen on host:port (IPv4 or IPv6); the socket is inheritable by workers."""
    sock = _bound(host, port, socket.SO_REUSEADDR, f"cannot listen on {host}:{port}", "--port")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def reserve_grpc(host: str, port: int) -> socket.socket:
    """Bind (never listen) host:port with SO_REUSEPORT: holds the gRPC port, resolves 0, and lets workers bind it."""
    return _bound(host, port, socket.SO_REUSEPORT, f"cannot serve gRPC on {host}:{port}", "--grpc-port")


def _bound(host: str, port: int, option: int, what: str, flag: str) -> socket.socket:
    """A TCP socket (IPv4 or IPv6 by the host's form) with `option` set, bound to host:port; a RoostError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, option, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RoostError(
            f"{what}: {exc.strerror}", hint=f"pick another {flag}, or stop the process using this one"
        ) from None
    return sock


class Fleet:
    """Supervises `replicas` workers serving one socket."""

    def __init__(self, cfg: ServeConfig, announce: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        self.announce = announce or log.info
        self.workers = [_Worker(i) for i in range(cfg.replicas)]
        self._stop = False
        self._reload = False
        self._announced = False
        self.sock: socket.socket | None = None
        self.grpc_sock: socket.socket | None = None
        self.port = cfg.port

    # ---- signals ---------------------------------------------------------------------------------------
    def _on_stop(self, signum: int, _frame: object) -> None:
        self._stop = True

    def _on_reload(self, signum: int, _frame: object) -> None:
        self._reload = True

    # ---- workers ---------------------------------------------------------------------------------------
    def _spawn(self, w: _Worker, status_w: int, env: dict[str, str]) -> None:
        """Start (or restart) the process of worker slot `w`."""
        assert self.sock is not None
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "roost.serve.worker"], env=env, pass_fds=(self.sock.fileno(), status_w)
        )
        w.started, w.ready, w.restart_at = time.monotonic(), False, None
        w.history.append(w.proc.pid)
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)

    def _reap(self, w: _Worker, metrics: Metrics) -> bool:
        """Handle a worker that exited; returns False when the fleet cannot start at all."""
        assert w.proc is not None
        rc, pid = w.proc.returncode, w.proc.pid
        w.proc = None
        try:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]  # untyped library
        except Exception:  # noqa: BLE001
            pass
        if not w.ready and not any(x.ready or x.restarts for x in self.workers) and rc != 0:
            log.error("worker %d (pid %d) failed to start (exit %s)", w.index, pid, rc)
            return False
        lived = time.monotonic() - w.started
        w.backoff = 0.0 if lived > HEALTHY_AFTER_S else min(MAX_BACKOFF_S, max(0.25, w.backoff * 2))
        w.restart_at = time.monotonic() + w.backoff
        w.restarts += 1
        metrics.worker_restarts.inc()
        log.warning(
            "worker %d (pid %d) exited with %s after %.1fs; restarting in %.2fs", w.index, pid, rc, lived, w.backoff
        )
        return True

    def _read_status(self, fd: int, buf: bytearray) -> None:
        """Consume 'ready PID' lines the workers write once they serve."""
        try:
            buf += os.read(fd, 4096)
        except BlockingIOError:
            return
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            parts = line.split()
            if len(parts) == 2 and parts[0] == b"ready":
                pid = int(parts[1])
                for w in self.workers:
                    if w.proc is not None and w.proc.pid == pid:
                        w.ready = True
        if not self._announced and all(w.ready for w in self.workers):
            self._announced = True
            grpc = "" if self.cfg.grpc_port is None else f" and grpc://{self._display_host()}:{self.cfg.grpc_port}"
            what = ", ".join(self.cfg.models) or "registry models on demand"
            self.announce(
                f"serving {what} on http://{self._display_host()}:{self.port}{grpc} "
                f"({len(self.workers)} worker{'s' if len(self.workers) > 1 else ''}, pids "
                f"{' '.join(str(w.proc.pid) for w in self.workers if w.proc)})"
            )

    def _display_host(self) -> str:
        return f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host

    def _broadcast(self, sig: int) -> None:
        """Send `sig` to every running worker."""
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                try:
                    w.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    # ---- main loop -------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the process exit code."""
        prom_dir = tempfile.mkdtemp(prefix="roost-metrics-")
        os.environ[MULTIPROC_ENV] = prom_dir
        from roost.serve.metrics import Metrics

        metrics = Metrics()
        self.sock = bind(self.cfg.host, self.cfg.port)
        self.port = self.sock.getsockname()[1]
        if self.cfg.grpc_port is not None:  # workers bind it too (SO_REUSEPORT); the kernel spreads connections
            self.grpc_sock = reserve_grpc(self.cfg.host, self.cfg.grpc_port)
            self.cfg.grpc_port = self.grpc_sock.getsockname()[1]
        status_r, status_w = os.pipe()
        os.set_blocking(status_r, False)
        env = dict(os.environ)
        env.update(
            {
                CONFIG_ENV: self.cfg.to_json(),
                "ROOST_SERVE_FD": str(self.sock.fileno()),
                "ROOST_SERVE_STATUS_FD": str(status_w),
                MULTIPROC_ENV: prom_dir,
            }
        )
        env.setdefault("OMP_NUM_THREADS", str(self.cfg.intra_op_threads()))
        if self.cfg.workspace:
            env["ROOST_WORKSPACE"] = self.cfg.workspace
        old = {s: signal.signal(s, self._on_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        old.update({s: signal.signal(s, self._on_reload) for s in (signal.SIGHUP, signal.SIGUSR1)})
        code, buf = 0, bytearray()
        registration: FleetRegistration | None = None
        try:
            for w in self.workers:
                self._spawn(w, status_w, env)
            registration = self._register(prom_dir)
            while not self._stop:
                r, _, _ = select.select([status_r], [], [], 0.2)
                if r:
                    self._read_status(status_r, buf)
                if self._reload:
                    self._reload = False
                    self._broadcast(signal.SIGHUP)
                now = time.monotonic()
                for w in self.workers:
                    if w.proc is not None and w.proc.poll() is not None and not self._stop:
                        if not self._reap(w, metrics):
                            self._stop, code = True, 1
                            break
                    if w.proc is None and w.restart_at is not None and now >= w.restart_at and not self._stop:
                        self._spawn(w, status_w, env)
                    if w.proc is not None and w.ready and now - w.started > HEALTHY_AFTER_S:
                        w.backoff = 0.0
        finally:
            self._shutdown()
            if registration is not None:
                registration.stop()  # after the workers flushed their request logs: the last minutes count
            for s, h in old.items():
                signal.signal(s, h)
            os.close(status_r)
            os.close(status_w)
            shutil.rmtree(prom_dir, ignore_errors=True)
        return code

    def _register(self, prom_dir: str) -> FleetRegistration | None:
        """Start keeping this fleet registered in the workspace's registry (None: no workspace to register in)."""
        from roost.serve.registration import FleetRegistration, served_models

        if not self.cfg.workspace:
            return None
        return FleetRegistration(
            lambda: served_models(self.cfg),
            self.cfg.host,
            self.port,
            log_dir=self.cfg.request_log_dir(),
            log_rate=self.cfg.log_requests,
            pids=lambda: {pid for w in self.workers for pid in w.history},
            prom_dir=prom_dir,
        ).start()

    def _shutdown(self) -> None:
        """Drain: stop accepting, SIGTERM the workers, wait for in-flight requests, SIGKILL stragglers."""
        if self.sock is not None:
            self.sock.close()
        if self.grpc_sock is not None:
            self.grpc_sock.close()
        self._broadcast(signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.grace_s + 5.0
        for w in self.workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not drain in time; killing it", w.proc.pid)
                w.proc.kill()
                w.proc.wait()
        log.info("all workers stopped")


def serve(cfg: ServeConfig, announce: Callable[[str], None] | None = None) -> int:
    """Check the models resolve, then run the fleet until stopped; returns the exit code."""
    from roost.serve.loader import parse_spec, resolve

    cfg.check()
    cfg.request_log_dir()
    for m in cfg.models:
        resolve(parse_spec(m))
    return Fleet(cfg, announce).run()
