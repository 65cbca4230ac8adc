"""`roost server` (the team server: REST API, artifact proxy, web UI) and `roost login` / `roost logout`."""

from __future__ import annotations

import os
import sys

import typer


def register(app: typer.Typer) -> None:
    """Add the `server`, `login` and `logout` commands."""
    app.command("server")(server)
    app.command("login")(login)
    app.command("logout")(logout)


def server(
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (0.0.0.0: every interface)"),
    port: int = typer.Option(5005, "--port", help="port to listen on"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes behind the one port"),
    store: str | None = typer.Option(None, "--store", help="database URL (default: the workspace's store)"),
    artifacts_root: str | None = typer.Option(
        None, "--artifacts", help="artifact root, file:///… or s3://… (default: the workspace's)"
    ),
    default_role: str = typer.Option("read", "--default-role", help="role of a signed-in account without a grant"),
    certfile: str | None = typer.Option(None, "--certfile", help="TLS certificate (PEM); with --keyfile"),
    keyfile: str | None = typer.Option(None, "--keyfile", help="TLS private key (PEM)"),
    trusted_proxy: list[str] | None = typer.Option(
        None, "--trusted-proxy", help="reverse proxy address whose X-Forwarded-* headers are believed; repeatable"
    ),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="also answer this Host name, repeatable ('*' = any); see docs/server.md"
    ),
    public_url: str | None = typer.Option(None, "--public-url", help="how clients reach it (behind a proxy)"),
    max_upload_mb: float = typer.Option(5120.0, "--max-upload-mb", min=0.001, help="largest artifact file accepted"),
    session_secret_file: str | None = typer.Option(
        None, "--session-secret-file", help="file holding the key that signs UI sessions (they then survive restarts)"
    ),
) -> None:
    """Serve a whole team: the REST API (/api/v1), the artifact proxy and the web UI, backed by one store."""
    import shutil
    import tempfile

    import uvicorn

    from roost import workspace
    from roost.cli.output import echo
    from roost.errors import RoostError
    from roost.netpolicy import allowed_hosts
    from roost.server import runner
    from roost.server.settings import ServerSettings

    if default_role not in ("read", "none"):
        raise RoostError(f"--default-role {default_role!r}", hint="read or none")
    if bool(certfile) != bool(keyfile):
        raise RoostError("--certfile and --keyfile go together", hint="give both (PEM files), or neither")
    if store is None or artifacts_root is None:
        ws = workspace.current()
        store = store or ws.store_url
        artifacts_root = artifacts_root or ws.artifacts
    if store.startswith(("http://", "https://")):
        raise RoostError(f"--store {store} is a roost server", hint="give the database URL (postgresql://…)")
    if "://" not in artifacts_root:
        artifacts_root = "file://" + os.path.abspath(artifacts_root)
    settings = ServerSettings(
        store_url=store,
        artifact_root=artifacts_root,
        default_role=default_role,
        allowed_hosts=allowed_hosts(host, allow_host or ()),
        public_url=public_url,
        trusted_proxies=list(trusted_proxy or []),
        secure_cookies=bool(certfile),
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        session_secret=_session_secret(session_secret_file),  # one for all workers: sessions work on any of them
    )
    rundir = tempfile.mkdtemp(prefix="roost-server-")  # private (0700): what the workers share on this machine
    settings.limiter_path = os.path.join(rundir, "login-failures.db")  # one wrong-password count for all workers
    settings.store()  # migrate once here, before the workers start (a clear error when the database is down)
    env = runner.server_env(settings)  # (computed before the old environment is cleared)
    os.environ.clear()
    os.environ.update(env)
    scheme = "https" if certfile else "http"
    echo(f"roost server at {scheme}://{host}:{port}/ ({workers} worker(s), store {_redacted(store)})")
    sys.stdout.flush()
    try:
        uvicorn.run(
            "roost.server.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http="roost.server.runner:http_protocol",
            ws="none",
            log_level=os.environ.get("ROOST_SERVER_LOG_LEVEL", "warning"),
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            proxy_headers=bool(trusted_proxy),
            forwarded_allow_ips=list(trusted_proxy or []) or None,
            server_header=False,
        )
    except OSError as exc:
        raise RoostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port") from None
    finally:
        shutil.rmtree(rundir, ignore_errors=True)


def _session_secret(path: str | None) -> str:
    """The key read from `path` (at least 32 characters), else a random one for this start."""
    import secrets

    from roost.errors import RoostError

    if path is None:
        return secrets.token_urlsafe(32)
    try:
        key = open(path, encoding="utf-8").read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise RoostError(f"cannot read --session-secret-file {path}: {exc}", hint="give a readable text file") from None
    if len(key) < 32:
        raise RoostError(
            f"--session-secret-file {path} holds {len(key)} characters; at least 32 are needed",
            hint="python -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE; chmod 600 FILE",
        )
    return key


def _redacted(url: str) -> str:
    from roost.errors import redact_url

    return redact_url(url)


def login(
    url: str = typer.Argument(..., help="the server, e.g. https://roost.example.com"),
    token_stdin: bool = typer.Option(False, "--token-stdin", help="read the token from standard input"),
) -> None:
    """Sign this machine in to a roost server: the token is checked, then saved (mode 0600) for every command."""
    import httpx

    from roost.cli.output import echo
    from roost.errors import RoostError
    from roost.registry import credentials

    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise RoostError(f"{url} is not an http(s) URL", hint="e.g. roost login https://roost.example.com")
    token = sys.stdin.readline().strip() if token_stdin else typer.prompt("token", hide_input=True).strip()
    if not token:
        raise RoostError("no token given", hint="create one on the server: roost tokens create")
    try:
        resp = httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=15)
    except httpx.HTTPError as exc:
        raise RoostError(f"cannot reach {url}: {exc}", hint="check the URL and that `roost server` runs") from None
    if resp.status_code in (401, 403):
        raise RoostError(f"{url} refused the token (HTTP {resp.status_code})", hint="check it, or create a new one")
    if resp.status_code != 200:
        raise RoostError(f"{url}/api/v1/whoami answered HTTP {resp.status_code}", hint="is this a roost server?")
    name = resp.json().get("name")
    path = credentials.save(url, token)
    echo(f"signed in to {url}" + (f" as {name}" if name else "") + f" (saved in {path})")


def logout() -> None:
    """Forget the saved server and token."""
    from roost.cli.output import echo
    from roost.registry import credentials

    echo("signed out" if credentials.forget() else "not signed in")
