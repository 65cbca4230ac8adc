"""`roost init`: create or re-open a workspace."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add `init` to the CLI."""

    @app.command("init")
    def init_cmd(
        directory: Path | None = typer.Argument(None, help="folder (default: current)"),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Create roost.yaml and .roost/ (SQLite store in WAL mode, artifact root); safe to run twice."""
        from roost.cli.output import echo, print_json
        from roost.registry.api import init

        ws = init(directory)
        if as_json:
            print_json({"root": str(ws.root), "store": ws.store_url, "artifacts": str(ws.artifacts)})
            return
        echo(f"[green]workspace ready[/] at {ws.root}")
        echo(f"  store     {ws.store_url}")
        echo(f"  artifacts {ws.artifacts}")
