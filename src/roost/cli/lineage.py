"""`roost lineage REQUEST_ID | MODEL@ALIAS | RUN_ID`: from a prediction back to its run, data and feature views."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `lineage` command."""
    app.command("lineage")(lineage_cmd)


def lineage_cmd(
    target: str = typer.Argument(..., help="a logged request id, MODEL@ALIAS, MODEL/VERSION or a run id (prefix)"),
    log_dir: Path | None = typer.Option(
        None, "--log-dir", help="request-log folder (default: the workspace's, as `roost serve --log-requests`)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Trace a request, model version or run back to its run, training data and feature view versions."""
    from roost.cli.output import print_json
    from roost.lineage import lineage, render_text

    lin = lineage(target, log_dir=log_dir)
    if as_json:
        print_json(lin)
        return
    typer.echo("\n".join(render_text(lin)))
