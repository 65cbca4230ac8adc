"""Servers for bench/server.py: one backend's stores, a `roost server`, an `mlflow server --app-name basic-auth`.

Each server is its own process group on 127.0.0.1 (a free port), logging to a file in its folder; the context
managers yield the environment its client needs and stop the whole group at exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _servers import create_database, free_port, postgres

# Both admins get the same password. MLflow's is bootstrapped from its auth config file (admin_password), as its
# docs say; 3.17.2 refuses the old default `password1234` (GHSA-gq3w-7jj3-x7gr).
MLFLOW_ADMIN = ROOST_ADMIN = ("admin", "bench-admin-password-1234")
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # no "View run at ..." line per run
}
# Variables that would point a client at a local store instead of its server.
LOCAL = ("ROOST_WORKSPACE", "ROOST_STORE_URL", "ROOST_ARTIFACTS", "ROOST_SERVER", "ROOST_TOKEN", "MLFLOW_TRACKING_URI")


def client_env(extra: dict) -> dict:
    """The environment of a client process: this one's, minus local-store settings, plus the server's."""
    env = {k: v for k, v in os.environ.items() if k not in LOCAL}
    return {**env, **QUIET, **extra}


@contextlib.contextmanager
def backend(kind: str, folder: Path) -> Iterator[dict | None]:
    """Store URLs of each server for `kind` (sqlite: a file each; postgresql: a database each in one cluster).

    Yields None (after printing why) when PostgreSQL cannot start here.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    if kind == "sqlite":
        yield {
            "roost": f"sqlite:///{folder / 'roost.db'}",
            "mlflow": f"sqlite:///{folder / 'mlflow.db'}",
            "mlflow_auth": f"sqlite:///{folder / 'mlflow_auth.db'}",
        }
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown backend {kind!r}: sqlite or postgresql")
    try:
        cm = postgres()
        base = cm.__enter__()
    except (SystemExit, subprocess.CalledProcessError, OSError) as e:
        detail = getattr(e, "stderr", None) or e
        print(f"\n== postgresql SKIPPED: PostgreSQL could not start here ({str(detail).strip()[-300:]})", flush=True)
        yield None
        return
    try:
        yield {name: create_database(base, name) for name in ("roost", "mlflow", "mlflow_auth")}
    finally:
        cm.__exit__(None, None, None)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Wait until GET url answers below 500; stop with the server's log tail if it exits or never answers."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise SystemExit(f"server did not answer {url} in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server's process group: SIGTERM, then SIGKILL after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start(cmd: list[str], folder: Path, env: dict, health: str) -> subprocess.Popen:
    """Start a server process (own group), log to folder/server.log, wait for `health`."""
    log = folder / "server.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    wait_http(health, proc, log)
    return proc


@contextlib.contextmanager
def mlflow_server(py: Path, store: str, auth_store: str, folder: Path, workers: int, cache_ttl: int) -> Iterator[dict]:
    """`mlflow server --app-name basic-auth` with its admin from the auth config; yields its client env."""
    folder.mkdir(parents=True, exist_ok=True)
    ini = folder / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {auth_store}\nadmin_username = {MLFLOW_ADMIN[0]}\nadmin_password = {MLFLOW_ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {cache_ttl}\n"
    )
    port = free_port()
    cmd = [
        str(py.parent / "mlflow"), "server", "--app-name", "basic-auth", "--backend-store-uri", store,
        "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip
    # a static key for its CSRF protection (required with several workers), as its start-up error asks
    env = {
        **os.environ,
        **QUIET,
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
    }
    t0 = time.perf_counter()
    proc = start(cmd, folder, env, f"http://127.0.0.1:{port}/health")
    print(f"  [mlflow server up in {time.perf_counter() - t0:.1f} s on :{port}, {store.split(':')[0]}]", flush=True)
    try:
        yield {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN[0],
            "MLFLOW_TRACKING_PASSWORD": MLFLOW_ADMIN[1],
        }
    finally:
        stop(proc)


def roost_cli(args: list[str], env: dict, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run `roost ARGS` (this interpreter); its stdout, or stop with its error."""
    p = subprocess.run(
        [sys.executable, "-m", "roost", *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd
    )
    if p.returncode != 0:
        raise SystemExit(f"`roost {' '.join(args)}` failed ({p.returncode}): {(p.stderr or p.stdout)[-1500:]}")
    return p.stdout


def roost_missing() -> str:
    """Why the roost side cannot run yet ('' when `roost server`, `users` and `tokens` are all there)."""
    missing = []
    for verb in (["server"], ["users", "add"], ["tokens", "create"]):
        p = subprocess.run([sys.executable, "-m", "roost", *verb, "--help"], capture_output=True, text=True)
        if p.returncode != 0:
            missing.append(f"`roost {' '.join(verb)}` ({(p.stderr or p.stdout).strip().splitlines()[-1:]})")
    return ("missing on this checkout: " + ", ".join(missing)) if missing else ""


@contextlib.contextmanager
def roost_server(store: str, folder: Path, workers: int) -> Iterator[dict]:
    """`roost server` on `store` with an admin and a token; yields its client env (ROOST_SERVER, ROOST_TOKEN)."""
    folder.mkdir(parents=True, exist_ok=True)
    arts = (folder / "artifacts").as_uri()
    env = {**client_env({}), "ROOST_STORE_URL": store, "ROOST_ARTIFACTS": arts}
    port = free_port()
    cmd = [
        sys.executable, "-m", "roost", "server", "--host", "127.0.0.1", "--port", str(port), "--store", store,
        "--artifacts", arts, "--workers", str(workers),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = start(cmd, folder, env, f"http://127.0.0.1:{port}/api/v1/health")
    try:
        add = ["users", "add", ROOST_ADMIN[0], "--admin", "--password-stdin", "--store", store]
        roost_cli(add, env, ROOST_ADMIN[1] + "\n", folder)
        out = roost_cli(["tokens", "create", "--user", ROOST_ADMIN[0], "--store", store], env, None, folder)
        token = re.search(r"^roost_\S+$", out, re.M)  # printed once, alone on its line
        if not token:
            raise SystemExit("`roost tokens create` printed no roost_… token line")
        print(f"  [roost server up in {time.perf_counter() - t0:.1f} s on :{port}, {store.split(':')[0]}]", flush=True)
        yield {"ROOST_SERVER": f"http://127.0.0.1:{port}", "ROOST_TOKEN": token.group(0)}
    finally:
        stop(proc)
