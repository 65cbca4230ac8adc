"""TensorBoard processes for runs: one per set of log dirs, on a free loopback port, reused, stopped when idle,
at most `max_boards` at once (the one idle longest makes room for a new one).

TensorBoard has no authentication and checks no Host header, so each one serves only under a random path prefix
(`/tb/<key>`, 128 bits) that the UI process alone knows: it reaches TensorBoard through a private flag file (0600,
deleted once TensorBoard answers), never the command line that `ps` shows, and browsers reach it only through
the UI's proxy, behind the UI's token and Host/Origin checks (docs/security.md). A page that rebinds its name to
127.0.0.1 and scans ports finds only 404s."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from roost.errors import RoostError

log = logging.getLogger(__name__)

TB_SUBDIR = "tensorboard"
DEFAULT_IDLE_S = 30 * 60.0
DEFAULT_MAX_BOARDS = 4  # each TensorBoard holds memory and a core while it loads: docs/ui.md, bench/RESULTS.md
MAX_TB_RUNS = 10  # runs in one TensorBoard (the compare page offers the first ones with logs)
Spec = list[tuple[str, str]]


def logdir_name(run: dict[str, Any]) -> str:
    """A TensorBoard-safe, unique display name for a run: its name (sanitised) and short id."""
    base = re.sub(r"[^\w.\-]", "_", run.get("name") or "run")[:40]
    return f"{base}-{run['run_id'][:8]}"


def run_logdir(run: dict[str, Any]) -> Path | None:
    """The run's TensorBoard event folder (artifacts/tensorboard; a cached copy for remote roots; an `auto`
    child's folder on its parent run), or None — the same lookup as `roost tensorboard RUN`."""
    from roost.errors import RoostError
    from roost.training.tensorboard import run_logdir as training_logdir

    try:
        return training_logdir(run["run_id"])
    except RoostError:
        return None


def runs_with_logs(runs: list[dict[str, Any]], most: int = MAX_TB_RUNS) -> list[dict[str, Any]]:
    """The first `most` runs that have TensorBoard logs; a local run with neither a tensorboard/ folder nor the
    tag pointing at another run's logs is passed over without the full lookup (which reads the run again)."""
    from roost import artifacts
    from roost.training.tensorboard import TB_LOGS_TAG

    out: list[dict[str, Any]] = []
    for r in runs:
        if len(out) >= most:
            break
        uri = str(r.get("artifact_uri") or "")
        if artifacts.is_local(uri) and not (r.get("tags") or {}).get(TB_LOGS_TAG):
            try:
                if not (artifacts.local_path(uri) / TB_SUBDIR).is_dir():
                    continue
            except OSError:
                continue
        if run_logdir(r) is not None:
            out.append(r)
    return out


def spec_for(runs: list[dict[str, Any]]) -> Spec:
    """(name, dir) pairs for the runs that have TensorBoard logs; an error when none has."""
    pairs = [(logdir_name(r), str(d)) for r in runs if (d := run_logdir(r)) is not None]
    if not pairs:
        raise RoostError(
            "no TensorBoard logs for " + ("this run" if len(runs) == 1 else "these runs"),
            hint=f"training writes event files under the run's artifacts in {TB_SUBDIR}/",
        )
    for _, logdir in pairs:
        if "," in logdir:
            raise RoostError(
                f"TensorBoard cannot take a log dir with a comma: {logdir}",
                hint="move the workspace to a path without ','",
            )
    return sorted(pairs)


@dataclass
class Board:
    """A running TensorBoard: its key (the URL prefix), port, process and last use."""

    key: str
    port: int
    proc: subprocess.Popen[bytes]
    spec: Spec
    log_path: Path | None = None
    last_used: float = field(default_factory=time.monotonic)
    flagfile: Path | None = None  # holds --path_prefix until TensorBoard has read it

    @property
    def prefix(self) -> str:
        """The path prefix it serves under (the UI proxies /tb/<key>/ to it)."""
        return f"/tb/{self.key}"

    @property
    def url(self) -> str:
        """Its address on loopback."""
        return f"http://127.0.0.1:{self.port}{self.prefix}/"

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None


class TensorBoardManager:
    """Starts, reuses and stops TensorBoard processes (thread-safe), at most `max_boards` alive at once."""

    def __init__(
        self,
        idle_s: float = DEFAULT_IDLE_S,
        log_dir: Path | None = None,
        command: list[str] | None = None,
        max_boards: int = DEFAULT_MAX_BOARDS,
    ) -> None:
        if max_boards < 1:
            raise RoostError(f"max_boards must be at least 1, got {max_boards}", hint="e.g. --tensorboard-max 4")
        self.idle_s = idle_s
        self.max_boards = max_boards
        self.log_dir = log_dir
        self.command = command or [sys.executable, "-m", "tensorboard.main"]
        self.boards: dict[str, Board] = {}
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    @staticmethod
    def new_key() -> str:
        """A fresh unguessable board key (the secret part of its URL prefix)."""
        return secrets.token_urlsafe(16)

    def ensure(self, spec: Spec) -> Board:
        """The live board for `spec`, started on a free port when none runs (stopping the longest idle at the cap)."""
        spec = sorted(spec)
        with self._lock:
            for b in self.boards.values():
                if b.spec == spec and b.alive():
                    b.last_used = time.monotonic()
                    return b
            evicted = self._make_room()
            board = self._start(self.new_key(), spec)
        for old in evicted:
            log.info("stopping TensorBoard %s (idle longest; at most %d run at once)", old.key, self.max_boards)
            _kill_group(old.proc)
        return board

    def _make_room(self) -> list[Board]:
        """Forget dead boards and take out the longest-idle live ones until one more fits (lock held)."""
        for k in [k for k, b in self.boards.items() if not b.alive()]:
            del self.boards[k]
        evicted = []
        while len(self.boards) >= self.max_boards:
            oldest = min(self.boards.values(), key=lambda b: b.last_used)
            evicted.append(self.boards.pop(oldest.key))
        return evicted

    def _start(self, key: str, spec: Spec) -> Board:
        """Start TensorBoard for `spec` on a free port and register it (lock held)."""
        from roost.training.tensorboard import free_port, private_flagfile

        port = free_port()
        logspec = ",".join(f"{n}:{d}" for n, d in spec)
        args = [
            *self.command,
            "--logdir_spec",
            logspec,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        flagfile = private_flagfile(f"--path_prefix=/tb/{key}\n")
        args += ["--flagfile", str(flagfile)]
        out: IO[bytes] | int = subprocess.DEVNULL
        log_path = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.log_dir / f"tensorboard-{hashlib.sha256(key.encode()).hexdigest()[:12]}.log"  # not the key
            # closed below, once the child holds its own copy; 0600: TensorBoard logs its URL, secret prefix included
            out = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        try:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except BaseException:
            flagfile.unlink(missing_ok=True)
            raise
        finally:
            if not isinstance(out, int):
                out.close()
        log.info("started TensorBoard %s… on port %d (pid %d)", key[:4], port, proc.pid)
        b = Board(key, port, proc, spec, log_path, flagfile=flagfile)
        self.boards[key] = b
        return b

    def get(self, key: str) -> Board | None:
        """The live board with this key (marked used), or None."""
        b = self.boards.get(key)
        if b is None or not b.alive():
            return None
        b.last_used = time.monotonic()
        return b

    def wait_ready(self, board: Board, timeout: float = 90.0) -> None:
        """Block until the board answers HTTP; an error (with its log tail) if it dies or times out."""
        try:
            self._wait(board, timeout)
        finally:
            _forget_flags(board)

    def _wait(self, board: Board, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not board.alive():
                raise RoostError(
                    f"TensorBoard exited with code {board.proc.returncode}",
                    hint=self._log_tail(board) or "run tensorboard by hand to see why",
                )
            try:
                if httpx.get(board.url, timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RoostError(f"TensorBoard did not answer within {timeout:.0f} s", hint=self._log_tail(board))

    @staticmethod
    def _log_tail(board: Board) -> str:
        if board.log_path is None or not board.log_path.exists():
            return ""
        return board.log_path.read_text(errors="replace")[-800:]

    def stop(self, key: str) -> None:
        """Stop one board (its whole process group)."""
        with self._lock:
            b = self.boards.pop(key, None)
        if b is not None:
            _kill_group(b.proc)
            _forget_flags(b)

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Stop boards unused for longer than idle_s (and forget dead ones); returns the stopped keys."""
        now = time.monotonic() if now is None else now
        stale = [k for k, b in list(self.boards.items()) if not b.alive() or now - b.last_used > self.idle_s]
        for k in stale:
            self.stop(k)
        return stale

    def stop_all(self) -> None:
        """Stop every board (UI exit)."""
        for k in list(self.boards):
            self.stop(k)

    def listing(self) -> list[dict[str, Any]]:
        """Running boards as JSON-friendly dicts."""
        now = time.monotonic()
        return [
            {
                "key": b.key,
                "port": b.port,
                "path": b.prefix + "/",
                "runs": [n for n, _ in b.spec],
                "idle_s": round(now - b.last_used, 1),
                "pid": b.proc.pid,
            }
            for b in self.boards.values()
            if b.alive()
        ]


def _forget_flags(board: Board) -> None:
    """Delete a board's flag file (TensorBoard read it at start)."""
    if board.flagfile is not None:
        board.flagfile.unlink(missing_ok=True)
        board.flagfile = None


def _kill_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(grace)
