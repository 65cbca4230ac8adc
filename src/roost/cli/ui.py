"""`roost ui`: serve the repository web UI."""

from __future__ import annotations

import os

import typer

from roost.ui.tensorboard import DEFAULT_MAX_BOARDS


def register(app: typer.Typer) -> None:
    """Add the `ui` command."""
    app.command("ui")(ui)


def ui(
    port: int = typer.Option(5000, "--port", help="port to listen on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (127.0.0.1 keeps it local)"),
    token: str | None = typer.Option(
        None, "--token", envvar="ROOST_UI_TOKEN", help="require this bearer token (header, or ?token= once → cookie)"
    ),
    allow_host: list[str] | None = typer.Option(
        None, "--allow-host", help="also answer this Host name, repeatable ('*' = any); see docs/security.md"
    ),
    tb_idle_minutes: float = typer.Option(
        30.0, "--tensorboard-idle-minutes", help="stop a TensorBoard nobody used for this long"
    ),
    tb_max: int = typer.Option(
        DEFAULT_MAX_BOARDS,
        "--tensorboard-max",
        min=1,
        help="most TensorBoards running at once (the longest idle makes room)",
    ),
) -> None:
    """Serve the web UI: experiments, runs, compare, models, feature views, TensorBoard."""
    from roost import workspace
    from roost.cli.output import echo
    from roost.errors import RoostError
    from roost.netpolicy import allowed_hosts
    from roost.registry.credentials import server_url
    from roost.ui.app import create_app, serve

    server = server_url()
    if server is not None:
        raise RoostError(
            f"roost ui needs direct store access, and this client talks to the roost server {server}",
            hint=f"open {server}/ (the server serves the UI), or unset ROOST_SERVER / `roost logout`",
        )
    ws = workspace.current()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not token:
        echo(f"warning: serving on {host} without --token: anyone who can reach this port can read the repository")
    app = create_app(
        token=token,
        allowed_hosts=allowed_hosts(host, allow_host or ()),
        tb_idle_s=tb_idle_minutes * 60,
        tb_log_dir=ws.state_dir / "ui",
        tb_max=tb_max,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    echo(f"roost ui for {ws.root} at {url}  (Ctrl-C stops it)")
    try:
        serve(app, host, port, os.environ.get("ROOST_UI_LOG_LEVEL", "warning"))  # SIGTERM/Ctrl-C: exit 0
    except OSError as exc:
        raise RoostError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port") from None
